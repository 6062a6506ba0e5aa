"""The text encoding of a replay's data files, and the error for bytes that are not text in it.

Exports are UTF-8 by default (a leading byte-order mark allowed: :data:`DEFAULT_ENCODING`
opens them as ``utf-8-sig``). Many Chinese government systems, and Excel on a Chinese
Windows, write CSV in GB18030 / GBK instead; any codec Python knows may be given
(:func:`text_codec`).

A file whose bytes are not text in its encoding is refused with :class:`UndecodableData`,
which names the file, the line and the byte offset of the first byte that cannot be read,
and says what to do. Finding the exact place needs a pass of its own (:func:`check_decodes`,
binary chunks through an incremental decoder): a text file object knows only that a chunk
of 8 KiB somewhere failed. The replay's preflight makes that pass over the whole file before
anything is written; a reader that meets such a byte while streaming (:func:`undecodable`)
makes it then, to say where.
"""

from __future__ import annotations

import codecs
import difflib
import encodings.aliases
import io
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import IO

from engine import GridwhistleError

__all__ = ["DEFAULT_ENCODING", "ChunkDecoder", "UndecodableData", "UnknownEncoding",
           "byte_order_mark", "check_decodes", "display_name", "text_codec", "text_lines",
           "undecodable"]

DEFAULT_ENCODING = "utf-8"
"""The encoding of an export unless one is given. Read as ``utf-8-sig``: a byte-order mark
(EF BB BF, as Excel's "CSV UTF-8" writes) at the very start is dropped, and is no line."""

EXAMPLES = ("utf-8", "gb18030", "gbk", "big5", "utf-16", "cp1252", "latin-1")
"""Encodings an unknown name's message offers (gb18030 first among the Chinese ones: it is a
superset of GBK and GB2312, so it reads their files too)."""

_CHUNK = 1 << 20
"""Bytes decoded at a time by :func:`check_decodes`."""


class UnknownEncoding(GridwhistleError, LookupError):
    """An encoding name that Python's codecs do not know as a text encoding.

    A ``LookupError`` too, as :func:`open` raises for one. The message lists a few that are
    known (and the nearest names to the one given).

    Attributes:
        encoding: the name given.
    """

    def __init__(self, encoding: str, *, not_text: bool = False) -> None:
        self.encoding = encoding
        if not_text:
            what = (f"{encoding!r} is a codec of Python, but not a text encoding (it does "
                    "not turn bytes into text)")
        else:
            near = difflib.get_close_matches(encoding.lower().replace("_", "-"),
                                             _known_names(), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            what = f"unknown text encoding {encoding!r}{hint}"
        super().__init__(
            f"{what}; give a text encoding Python knows, e.g. "
            f"{', '.join(EXAMPLES)} (gb18030 for exports from Chinese systems and Excel: it "
            "reads GBK too)")


class UndecodableData(GridwhistleError, ValueError):
    """A data file has bytes that are not text in the encoding it is read with.

    Nothing of the file is replayed. The message is one line: ``file:line: the file is not
    UTF-8 text: byte 0xc9 at byte offset 841 ...``, and what to do: save the file as UTF-8,
    or replay it with its encoding (``--encoding gb18030``, ``encoding="gb18030"`` in
    Python). A ``ValueError`` too, as the replay's other input errors (and the
    ``UnicodeDecodeError`` it replaces) are.

    A file that starts with a UTF-16 or UTF-32 byte-order mark (FF FE, FE FF, ...), read in
    another encoding, is told to be replayed with ``--encoding utf-16`` (or ``utf-32``).

    Attributes:
        path: the file; ``encoding``: the encoding it was read with (as given, e.g.
            ``utf-8``); ``marked``: ``(encoding, mark)`` when the file starts with the
            byte-order mark of another encoding (``("utf-16", "FF FE")``), else None;
            ``line``: the 1-based line of the byte (line breaks as the readers count them:
            LF, CR LF or CR; 0 when unknown); ``offset``: the byte's 0-based
            offset in the file (None when unknown); ``byte``: its value (None: the file ends
            inside a character); ``reason``: the codec's word for what is wrong.
    """

    def __init__(self, path: Path | str, encoding: str, line: int, offset: int | None,
                 byte: int | None, reason: str, *, note: str = "", start: bytes = b"") -> None:
        self.path = path
        self.encoding = encoding
        self.line = line
        self.offset = offset
        self.byte = byte
        self.reason = reason
        self.marked = byte_order_mark(start, encoding)
        name = display_name(encoding)
        at = f" at byte offset {offset:,}" if offset is not None else ""
        what = (f"byte {byte:#04x}{at}" if byte is not None
                else f"the file ends{at} inside a character" if offset is not None
                else "a byte")
        excel = " (Excel: Save As → CSV UTF-8)" if str(path).lower().endswith(".csv") else ""
        if self.marked is not None:
            found, mark = self.marked
            lead = "the file" if _is_utf8(encoding) else "check which encoding the file is in: it"
            advice = (f"{lead} starts with the byte-order mark of {found.upper()} ({mark}), "
                      f"so it is {found.upper()} text (as Excel's \"Unicode Text\" saves): "
                      f"replay it with --encoding {found} (encoding=\"{found}\" in Python), "
                      f"or save it as UTF-8{excel}")
        elif _is_utf8(encoding):
            advice = (f"save it as UTF-8{excel}, or replay it with its "
                      "encoding: --encoding gb18030 (encoding=\"gb18030\" in Python) for an "
                      "export from a Chinese system or a Chinese Excel (GB18030 reads GBK "
                      "too), or another codec, e.g. utf-16, big5, cp1252")
        else:
            advice = ("check which encoding the file is in and give that one with "
                      "--encoding (encoding= in Python): gb18030 for Chinese systems, "
                      "utf-16 for Excel's \"Unicode Text\", cp1252 for Western Windows; or "
                      f"save it as UTF-8{excel} and leave the encoding out")
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: the file is not {name} text: {what} cannot be read "
                         f"as {name} ({reason}); {advice}{note}")


_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
          (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
"""Byte-order marks of the encodings a file's first bytes give away (UTF-32's before
UTF-16's: FF FE 00 00 begins with FF FE)."""


def byte_order_mark(start: bytes, encoding: str) -> tuple[str, str] | None:
    """The encoding a file's first bytes ``start`` announce, when it is not ``encoding``'s.

    Returns:
        ``(encoding, mark)``, e.g. ``("utf-16", "FF FE")``, for a UTF-16 or UTF-32
        byte-order mark at the start of a file read in another encoding; else None.
    """
    for mark, found in _MARKS:
        if start.startswith(mark):
            try:
                family = codecs.lookup(encoding).name
            except LookupError:
                family = ""
            if family.startswith(found):
                return None
            return found, " ".join(f"{b:02X}" for b in mark)
    return None


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def display_name(encoding: str) -> str:
    """How messages name an encoding: ``UTF-8`` for the UTF-8 family, else as given."""
    return "UTF-8" if _is_utf8(encoding) else encoding


def _known_names() -> list[str]:
    names = {name.replace("_", "-") for name in encodings.aliases.aliases.values()}
    names |= {alias.replace("_", "-") for alias in encodings.aliases.aliases}
    return sorted(names)


def text_codec(encoding: str) -> str:
    """The codec to open a data file in ``encoding`` with.

    Args:
        encoding: any name Python's codecs know for a text encoding (``utf-8``, ``UTF8``,
            ``gb18030``, ``gbk``, ``utf-16``, ``cp1252``...).

    Returns:
        ``utf-8-sig`` for UTF-8 (a byte-order mark at the start is allowed and dropped), else
        the codec's canonical name (``gb18030``).

    Raises:
        UnknownEncoding: no such codec, or one that is not a text encoding (``base64``,
            ``rot13``).
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise UnknownEncoding(encoding) from None
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=info.name)  # refuses base64, rot13, ...
    except LookupError:
        raise UnknownEncoding(encoding, not_text=True) from None
    return "utf-8-sig" if info.name in ("utf-8", "utf-8-sig") else info.name


class ChunkDecoder:
    """Decodes a file's bytes a chunk at a time, counting bytes and lines as it goes.

    Args:
        path: the file (for the message).
        encoding: its encoding (any name :func:`text_codec` accepts).
        error: the class to raise (:class:`UndecodableData` or a subclass).
        note: words added to the message.

    Raises:
        UnknownEncoding: ``encoding`` is not a text encoding.

    Attributes:
        offset: the bytes decoded so far; ``lines``: the line their text ends on (1-based;
            a line break is LF, CR LF or CR).
    """

    def __init__(self, path: Path | str, encoding: str, *,
                 error: type[UndecodableData] = UndecodableData, note: str = "") -> None:
        self.path = path
        self.encoding = encoding
        self._error = error
        self._note = note
        self._decoder = codecs.getincrementaldecoder(text_codec(encoding))(errors="strict")
        self.offset = 0
        self.lines = 1
        self._cr = False  # the text so far ends with CR (an LF next ends no further line)
        self._start = b""  # the file's first bytes (a byte-order mark of another encoding?)

    def decode(self, chunk: bytes) -> str:
        """The text of the next ``chunk`` of the file (``b""``: the file has ended).

        A character split between two chunks comes with the second.

        Raises:
            UndecodableData: a byte cannot be read (the line and the byte offset of the
                first one), or the file ends inside a character.
        """
        decoder = self._decoder
        if len(self._start) < 4:
            self._start += chunk[:4 - len(self._start)]
        state = decoder.getstate()
        try:
            text = decoder.decode(chunk, not chunk)
        except UnicodeDecodeError as exc:
            # exc.object is the bytes the decoder held back from the chunk before (part of a
            # character), then this chunk; exc.start counts from the first of them.
            start = exc.start - (len(exc.object) - len(chunk))
            decoder.setstate(state)
            before = decoder.decode(chunk[:max(start, 0)])  # valid: it ends before the error
            line = self.lines + _line_breaks(before, self._cr)
            bad = exc.object[exc.start] if chunk and exc.start < len(exc.object) else None
            raise self._error(self.path, self.encoding, line, self.offset + start, bad,
                              exc.reason, note=self._note, start=self._start) from None
        except UnicodeError as exc:  # utf-16 / utf-32 without a byte-order mark, ...
            raise self._error(self.path, self.encoding, self.lines, self.offset,
                              chunk[0] if chunk else None, str(exc), note=self._note,
                              start=self._start) from None
        self.lines += _line_breaks(text, self._cr)
        if text:
            self._cr = text.endswith("\r")
        self.offset += len(chunk)
        return text


def check_decodes(path: Path, encoding: str, *,
                  error: type[UndecodableData] = UndecodableData, note: str = "") -> None:
    """Decode the whole of ``path`` (a pass of its own), raising where a byte cannot be read.

    Reads the file in binary chunks of 1 MiB through a :class:`ChunkDecoder`; memory holds
    a chunk, not the file.

    Args:
        path: the file.
        encoding: its encoding (any name :func:`text_codec` accepts).
        error: the class to raise (:class:`UndecodableData` or a subclass).
        note: words added to the message (e.g. what happened to the replay).

    Raises:
        UndecodableData: naming the line and byte offset of the first byte that cannot be
            read (or the end of a file cut inside a character).
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: the file cannot be read.
    """
    decoder = ChunkDecoder(path, encoding, error=error, note=note)
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            decoder.decode(chunk)
            if not chunk:
                return


def text_lines(handle: IO[str]) -> Iterable[str]:
    """The lines of a text file, a byte-order mark (U+FEFF) at its very start dropped.

    ``utf-8-sig`` drops the mark itself, and ``utf-16`` / ``utf-32`` theirs; other codecs
    (``gb18030``, ``utf-16-le``) leave it in the first line, where it would become part of
    the first column's name or make a JSON line "not JSON". It is no line: line numbers stay.
    """
    first = handle.readline()
    return chain((first.removeprefix("\ufeff"),) if first else (), handle)


def _line_breaks(text: str, after_cr: bool) -> int:
    """Line breaks in ``text`` (LF, CR LF or CR); ``after_cr``: the text before ended with CR."""
    count = text.count("\n") + text.count("\r") - text.count("\r\n")
    return count - 1 if after_cr and text.startswith("\n") else count


def undecodable(path: Path, encoding: str, exc: UnicodeError, *,
                error: type[UndecodableData] = UndecodableData, note: str = ""
                ) -> UndecodableData:
    """The error to raise for a ``UnicodeError`` met while reading ``path`` as text.

    The decode error of a text file object counts from the start of the chunk it was
    decoding, not of the file; this reads the file once more (:func:`check_decodes`) to say
    where. Should that pass find nothing (the file changed in between), the error names the
    file without a line.
    """
    try:
        check_decodes(path, encoding, error=error, note=note)
    except UndecodableData as located:
        return located
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start] if exc.start < len(exc.object) else None
        reason = exc.reason
    else:
        bad, reason = None, str(exc)
    return error(path, encoding, 0, None, bad, reason,
                 note=note or " (the file changed while it was read: read it again)")
