"""The records of a CSV export as the csv module reads them, and the error for one it cannot.

Python's csv reader stops a file with ``_csv.Error`` instead of a row it can reject: above all
a cell longer than its field limit (131,072 characters), which in an export is nearly always
a quoted cell whose closing quote is missing: the cell runs on over every line after it. The
error said neither file nor line (``field larger than field limit (131072)``), and being no
``ValueError`` it ended ``gridwhistle replay`` in a traceback, after ``--fresh`` had emptied
the database. :class:`MalformedCsv` names the file, the line the row starts on and what to
do; :func:`check_records` reads every record once (the replay's preflight), so such a file
is refused before anything is written.
"""

from __future__ import annotations

import csv
from pathlib import Path

from adapters.replay.encoding import DEFAULT_ENCODING, text_codec, text_lines, undecodable
from engine import GridwhistleError

__all__ = ["MalformedCsv", "check_records", "malformed_csv"]

_FIELD_LIMIT = "field larger than field limit"
"""How the csv module's message for a cell over its limit begins."""


class MalformedCsv(GridwhistleError, ValueError):
    """A CSV export the csv reader cannot read on, so no row after the fault can be replayed.

    Nothing of the file is replayed (the replay's preflight reads every record first). The
    message is one line: ``file:line: ...`` (the line the row starts on), what is wrong and
    what to do. A ``ValueError`` too, as the replay's other input errors are.

    Attributes:
        path: the file; ``line``: the 1-based line the row starts on; ``stopped``: the line
            the reader had got to when it stopped; ``reason``: the csv module's message.
    """

    def __init__(self, path: Path | str, line: int, stopped: int, reason: str, *,
                 note: str = "") -> None:
        self.path = path
        self.line = line
        self.stopped = stopped
        self.reason = reason
        if reason.startswith(_FIELD_LIMIT):
            ran = f", run on to line {stopped:,}," if stopped > line else ""
            what = (f"the row that starts on line {line:,} has a cell{ran} longer than the "
                    f"{csv.field_size_limit():,} characters a CSV cell may hold: most likely "
                    "a quoted cell whose closing quote is missing, so that it runs on over "
                    "the lines after it; close the quote (a quote inside a quoted cell is "
                    "written twice: \"\"), or export the file again")
        else:
            what = (f"the row that starts on line {line:,} cannot be read as CSV ({reason}); "
                    "fix it, or export the file again")
        super().__init__(f"{path}:{line}: {what}{note}")


def malformed_csv(path: Path | str, line: int, stopped: int, exc: csv.Error, *,
                  note: str = "") -> MalformedCsv:
    """The error to raise for a ``csv.Error`` met reading the row that starts on ``line``.

    Args:
        path: the file.
        line: the line the row starts on (1-based).
        stopped: the reader's ``line_num`` when it stopped.
        exc: the csv module's error.
        note: words added to the message (e.g. that the file changed during the replay).
    """
    return MalformedCsv(path, line, max(stopped, line), str(exc), note=note)


def check_records(path: Path, encoding: str = DEFAULT_ENCODING) -> int:
    """Read every record of ``path`` as the replay reads it (a pass of its own).

    The file is decoded in ``encoding`` and parsed by the csv module a record at a time, as
    the replay's passes read it; memory holds a record, not the file. A row with too many or
    too few cells, or a quote left open at the very end, is no fault here: the replay
    rejects that row and goes on.

    Args:
        path: the CSV file.
        encoding: its text encoding (any name :func:`~adapters.replay.encoding.text_codec`
            accepts).

    Returns:
        The number of records read, the header's included (blank lines are none).

    Raises:
        MalformedCsv: the csv reader cannot read on (a cell over its limit: most often a
            quote never closed); names the line the row starts on.
        UndecodableData: a byte is not text in ``encoding`` (its line and byte offset).
        UnknownEncoding: ``encoding`` is not a text encoding.
        OSError: the file cannot be read.
    """
    codec = text_codec(encoding)
    records = 0
    try:
        with path.open(newline="", encoding=codec) as handle:
            reader = csv.reader(text_lines(handle))
            line = 0  # the last line of the record before
            try:
                for cells in reader:
                    line = reader.line_num
                    records += bool(cells)
            except csv.Error as exc:
                raise malformed_csv(path, line + 1, reader.line_num, exc) from None
    except UnicodeError as exc:  # a UnicodeDecodeError, mostly
        raise undecodable(path, encoding, exc) from None
    return records
