"""Form bodies read as the browsers and city systems that send them mean them: UTF-8.

Starlette reads an ``application/x-www-form-urlencoded`` body's bytes as Latin-1, so a raw
UTF-8 ``address_string=上海路1号`` arrives as mojibake (``ä¸``, U+008A, ``æµ·``…); only
percent-encoded text survives. The WHATWG URL standard's urlencoded parser — the one every
browser uses — splits the bytes on ``&`` and ``=``, turns ``+`` into a space,
percent-decodes, and decodes the resulting bytes as UTF-8. :func:`read_form` does that, and
honours an explicit ``charset`` parameter (``charset=gbk``); bytes that are not valid in the
charset are a 400, an unknown charset a 415, and nothing runs. Multipart forms go to
Starlette's parser (its parts are UTF-8 by default). A body of any other media type (JSON,
XML, text) is a 415 naming the form types, before the route reads a single field: Starlette
would read it as an empty form, and the route would then complain of a missing ``api_key``.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from engine import GridwhistleError

__all__ = ["FORM_TYPES", "MAX_FIELDS", "FormError", "parse_urlencoded", "read_form"]

MAX_FIELDS = 1000
"""The most name=value pairs a urlencoded form may carry (Starlette's own bound)."""

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORM_TYPES = (URLENCODED, MULTIPART)
"""The media types of a form body."""


class FormError(GridwhistleError):
    """A form body that cannot be read: ``status`` 400 (bad bytes) or 415 (media type, charset).

    Attributes:
        status, detail: the answer.
        accepted: for a body of another media type, the media types the route takes (for an
            ``Accept-Post`` header); else empty.
    """

    def __init__(self, status: int, detail: str, *, accepted: Sequence[str] = ()):
        self.status = status
        self.detail = detail
        self.accepted = tuple(accepted)
        super().__init__(detail)


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or "utf-8"
            try:
                return codecs.lookup(charset).name
            except LookupError:
                raise FormError(415, f"charset {charset[:40]!r} is not one this server "
                                     "knows; send the form as UTF-8 (charset=utf-8)") from None
    return "utf-8"


def parse_urlencoded(body: bytes, charset: str = "utf-8") -> list[tuple[str, str | UploadFile]]:
    """``name=value`` pairs of a urlencoded body (WHATWG URL standard, section 5.1).

    Raises:
        FormError: 400 when a name or value is not valid ``charset`` (default UTF-8), or
            there are more than :data:`MAX_FIELDS` pairs.
    """
    pairs: list[tuple[str, str | UploadFile]] = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        if len(pairs) >= MAX_FIELDS:
            raise FormError(400, f"the form has more than {MAX_FIELDS} fields")
        name, _, value = chunk.partition(b"=")
        try:
            pairs.append((unquote_to_bytes(name.replace(b"+", b" ")).decode(charset),
                          unquote_to_bytes(value.replace(b"+", b" ")).decode(charset)))
        except UnicodeDecodeError:
            shown = name[:40].decode("ascii", "backslashreplace")
            raise FormError(400, f"form field {shown!r} is not valid {charset} text; send "
                                 "the form as UTF-8 (raw or percent-encoded)") from None
    return pairs


async def read_form(request: Request, *, also: Sequence[str] = ()) -> FormData:
    """The request's form: urlencoded read as UTF-8 (or its ``charset``), multipart by Starlette.

    Args:
        request: the request.
        also: media types the route takes besides the form types (and reads itself before
            calling this), named in the 415.

    Raises:
        FormError: 415 for a body of another media type (a request without a body and
            without a ``Content-Type`` is an empty form); see :func:`parse_urlencoded`.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == MULTIPART:
        return await request.form()
    if media != URLENCODED:
        if not media and not await request.body():
            return FormData()
        accepted = (*FORM_TYPES, *also)
        sent = f"not {media[:80]}" if media else "and this one has no Content-Type"
        raise FormError(415, f"this endpoint takes a form: send the body as "
                             f"{', '.join(accepted[:-1])} or {accepted[-1]} (with that "
                             f"Content-Type), {sent}", accepted=accepted)
    charset = _charset(content_type)
    return FormData(parse_urlencoded(await request.body(), charset))
