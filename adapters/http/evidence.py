"""Evidence over HTTP: uploads, commands with files, downloads, and the resident's call-back.

* ``POST /uploads`` (multipart, field ``file``): check and store a file; answers its
  ``sha256``, which a command's ``evidence`` then names (``{"upload": sha256, "tag": ...}``).
* ``POST /tickets/with-evidence`` and ``POST /tickets/{id}/triggers/{trigger}/with-evidence``
  (multipart): one request doing both — ``command`` (the JSON body of ``POST /tickets`` or of
  the trigger), files under ``file`` (repeatable), and ``tag`` / ``taken_at`` (one for all
  files, or one per file in order).
* ``GET /tickets/{id}/evidence`` and ``GET /tickets/{id}/evidence/{attachment}``: the
  attachments and the bytes of one, for a key with access to the ticket (a department key:
  its department's tickets; an organisation's key: the tickets it holds now).
* ``POST /tickets/{id}/callback-link``: the centre issues a single-use link for a ticket in
  its call-back step (``/callback/{token}``). ``GET /callback/{token}`` shows the resident a
  small form (no account, no key); ``POST /callback/{token}`` (form or JSON: ``fixed``,
  ``rating`` 1–5, ``comment``) answers, once.

Upload limits (size, media types, declared type against content) are the lifecycle's
``evidence`` section; a refused file is a 422 problem (``evidence-rejected``). Each request
uploads inside :meth:`Engine.uploads <engine.Engine.uploads>`: when a file or the command is
refused, the files the request stored first are removed again, so a refused request leaves
the evidence store as it was (files stored before it, or named by any ticket, stay).
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from adapters.http.api import (
    _PRECONDITION,
    EngineDep,
    GrantDep,
    KeyDep,
    TicketId,
    _lifecycle,
    _out,
    download_path,
    fire_checked,
    location,
)
from adapters.http.auth import check_scope
from adapters.http.forms import FormError, read_form
from adapters.http.models import AttachmentOut, BlobOut, FireIn, ReportIn, TicketOut
from adapters.http.preconditions import IfMatchDep, no_if_match, set_etag
from adapters.http.problems import PROBLEM_JSON, Problem
from engine import CallbackLinkInvalid, Engine, EvidenceRejected, InvalidFields, TicketNotFound
from engine.evidence import Uploads

__all__ = ["MAX_FILES", "router", "store_files"]

_PROBLEM = {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem details"}
router = APIRouter(tags=["evidence"], responses={
    s: _PROBLEM for s in (400, 401, 403, 404, 409, 413, 422)})

MAX_FILES = 20


async def _form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Problem(415, "multipart-expected",
                      "send multipart/form-data with the file(s) under 'file'")
    return await request.form(max_files=MAX_FILES, max_fields=4 * MAX_FILES + 10)


async def _parts(files: list[UploadFile]) -> list[tuple[str | None, str | None, bytes]]:
    return [(f.filename, f.content_type, await f.read()) for f in files]


def store_files(uploads: Uploads,
                files: list[tuple[str | None, str | None, bytes]]) -> list[BlobOut]:
    """Check and store uploaded files in ``uploads`` (its actor, its lifecycle's limits).

    The one way files come in over HTTP (``POST /uploads``, the ``with-evidence`` commands
    and the console's action forms): :meth:`Uploads.upload <engine.evidence.Uploads.upload>`
    checks the size, the media type and the declared type against the content. The caller
    holds ``uploads`` open (``with engine.uploads(...)``) around the command that carries
    the files, so that a refusal — of a file here, or of the command — removes the files
    stored before it.

    Args:
        uploads: the request's :class:`~engine.evidence.Uploads`.
        files: ``(filename, declared media type, bytes)`` per file.

    Raises:
        Problem: 422 ``evidence-rejected`` (with ``why``, ``declared``, ``detected``,
            ``size``, ``limit``, ``filename``) for the first file refused; the files before
            it are removed when the problem leaves the ``uploads`` block.
    """
    out = []
    for filename, media_type, data in files:
        try:
            blob = uploads.upload(data, media_type=media_type)
        except EvidenceRejected as exc:
            raise Problem(422, "evidence-rejected", f"{filename or 'file'}: {exc}",
                          why=exc.why, declared=exc.declared, detected=exc.detected,
                          size=exc.size, limit=exc.limit, filename=filename) from None
        out.append(BlobOut(sha256=blob.sha256, media_type=blob.media_type, kind=blob.kind,
                           size=blob.size, new=blob.new))
    return out


def _files(form: FormData) -> list[UploadFile]:
    files = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
    if not files:
        raise Problem(400, "no-file", "send the file(s) as multipart parts named 'file'")
    return files


def _aligned(form: FormData, key: str, count: int) -> list[str | None]:
    values: list[str | None] = [v for v in form.getlist(key) if isinstance(v, str)]
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise Problem(400, f"bad-{key.replace('_', '-')}",
                      f"give one '{key}' for all files or one per file ({count})")
    return values


def _evidence(form: FormData, blobs: list[BlobOut]) -> list[dict[str, Any]]:
    tags = _aligned(form, "tag", len(blobs))
    taken = _aligned(form, "taken_at", len(blobs))
    out = []
    for blob, tag, at in zip(blobs, tags, taken, strict=True):
        item: dict[str, Any] = {"upload": blob.sha256}
        if tag:
            item["tag"] = tag
        if at:
            item["taken_at"] = at
        out.append(item)
    return out


def _command(form: FormData, model: type[ReportIn] | type[FireIn]) -> Any:
    raw = form.get("command")
    if raw is None:
        raw = "{}"
    if not isinstance(raw, str):
        raise Problem(400, "bad-command", "the 'command' part is JSON text, not a file")
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise Problem(422, "bad-command", f"the 'command' part is not a valid command: {exc}"
                      ) from None


@router.post("/uploads", status_code=201, response_model=list[BlobOut],
             summary="Upload evidence files")
async def upload_files(request: Request, engine: EngineDep, grant: GrantDep,
                       lifecycle: str | None = None) -> list[BlobOut]:
    """Check and store the multipart ``file`` parts; answers one entry per file.

    Each file's ``Content-Type`` must agree with its content; the limits of ``lifecycle``
    (default: the app's first) apply. All or nothing: if one file is refused, the files of
    this request stored before it are removed again.
    """
    form = await _form(request)
    parts = await _parts(_files(form))
    with engine.uploads(actor=grant.as_actor(), lifecycle=_lifecycle(request, lifecycle),
                        keep=True) as uploads:
        return store_files(uploads, parts)


@router.post("/tickets/with-evidence", status_code=201, response_model=TicketOut,
             summary="Report a ticket with files, in one request")
async def report_with_evidence(request: Request, response: Response, engine: EngineDep,
                               grant: GrantDep, idempotency_key: KeyDep) -> TicketOut:
    """Multipart: ``command`` (the JSON of ``POST /tickets``), files under ``file``."""
    form = await _form(request)
    body = _command(form, ReportIn)
    lifecycle = _lifecycle(request, body.lifecycle)
    parts = await _parts(_files(form))
    with engine.uploads(actor=grant.as_actor(), lifecycle=lifecycle) as uploads:
        blobs = store_files(uploads, parts)
        evidence = [e.plain() for e in body.evidence] + _evidence(form, blobs)
        ticket = engine.report(lifecycle, body.fields, actor=grant.as_actor(),
                               ticket_id=body.ticket_id, level=body.level, reason=body.reason,
                               idempotency_key=idempotency_key, evidence=evidence)
    response.headers["Location"] = location(ticket.id)
    set_etag(response, ticket)
    return _out(engine, ticket)


@router.post("/tickets/{ticket_id:ticket}/triggers/{trigger}/with-evidence",
             response_model=TicketOut, summary="Fire a trigger with files, in one request",
             responses=_PRECONDITION)
async def fire_with_evidence(ticket_id: TicketId,
                             trigger: Annotated[str, Path(min_length=1, max_length=64)],
                             request: Request, response: Response, engine: EngineDep,
                             grant: GrantDep, idempotency_key: KeyDep,
                             if_match: IfMatchDep) -> TicketOut:
    """Multipart: ``command`` (the JSON of the trigger's body), files under ``file``.

    ``If-Match`` as on ``POST /tickets/{id}/triggers/{trigger}``.
    """
    current = engine.get(ticket_id)
    check_scope(grant, current, engine.lifecycle_of(current))
    form = await _form(request)
    body = _command(form, FireIn)
    parts = await _parts(_files(form))
    with engine.uploads(actor=grant.as_actor(), lifecycle=current.lifecycle) as uploads:
        blobs = store_files(uploads, parts)
        evidence = [e.plain() for e in body.evidence] + _evidence(form, blobs)
        ticket = fire_checked(engine, current, trigger, grant, if_match, reason=body.reason,
                              fields=body.fields, idempotency_key=idempotency_key,
                              evidence=evidence)
    set_etag(response, ticket)
    return _out(engine, ticket)


@router.get("/tickets/{ticket_id:ticket}/evidence", response_model=list[AttachmentOut],
            summary="A ticket's attachments")
def list_evidence(ticket_id: TicketId, engine: EngineDep, grant: GrantDep
                  ) -> list[AttachmentOut]:
    """The ticket's attachments in history order, with where to download each."""
    ticket = engine.get(ticket_id)
    check_scope(grant, ticket, engine.lifecycle_of(ticket))
    return [AttachmentOut.of(a, download_path(a) if a.stored else None)
            for a in engine.attachments(ticket_id)]


@router.get("/tickets/{ticket_id:ticket}/evidence/{attachment_id}",
            summary="Download an attachment",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The file, with its media type."}})
def download_evidence(ticket_id: TicketId, attachment_id: Annotated[int, Path(ge=1)],
                      engine: EngineDep, grant: GrantDep) -> Response:
    """The bytes of one stored attachment (``ETag``: its SHA-256)."""
    ticket = engine.get(ticket_id)
    check_scope(grant, ticket, engine.lifecycle_of(ticket))
    return evidence_response(engine, ticket_id, attachment_id)


def evidence_response(engine: Engine, ticket_id: str, attachment_id: int) -> Response:
    """A streaming response with the bytes of a ticket's stored attachment.

    Raises:
        Problem: 404 when the ticket has no such stored attachment, or the storage lost it.
    """
    try:
        found, chunks = engine.read_attachment(ticket_id, attachment_id)
        first = next(chunks, b"")
    except (FileNotFoundError, TicketNotFound):
        raise Problem(404, "attachment-not-found",
                      f"ticket {ticket_id!r} has no stored attachment {attachment_id}") from None

    def body() -> Any:
        yield first
        yield from chunks

    ext = (found.media_type or "application/octet-stream").split("/")[-1]
    return StreamingResponse(body(), media_type=found.media_type or "application/octet-stream",
                             headers={"ETag": f'"{found.sha256}"',
                                      "Content-Length": str(found.size or 0),
                                      "Content-Disposition":
                                          f'inline; filename="{found.kind}-{found.id}.{ext}"'})


# -- the resident's call-back ------------------------------------------------------------------


@router.post("/tickets/{ticket_id:ticket}/callback-link", status_code=201,
             summary="Issue a call-back link for the resident",
             dependencies=[Depends(no_if_match)])
def issue_callback_link(ticket_id: TicketId, request: Request, engine: EngineDep,
                        grant: GrantDep) -> JSONResponse:
    """A new single-use link for a ticket in its call-back step (the centre's keys only).

    The answer holds the token once; only its hash is stored. A new link replaces the
    ticket's earlier one.
    """
    ticket = engine.get(ticket_id)
    check_scope(grant, ticket, engine.lifecycle_of(ticket))
    if grant.role != "centre" or grant.department or grant.organisation:
        raise Problem(403, "centre-only", "only the centre's keys issue call-back links")
    token = engine.callback_link(ticket_id, actor=grant.as_actor())
    cb = engine.lifecycle_of(ticket).spec.callback
    timer = next((t for t in engine.timers(ticket_id, status="pending")
                  if cb is not None and t.name == cb.deadline), None)
    url = str(request.url_for("callback_page", token=token))
    return JSONResponse({"ticket_id": ticket_id, "token": token, "url": url,
                         "expires_at": timer.due_at.isoformat() if timer else None},
                        status_code=201)


_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>回访 / Call-back</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:.6rem 0}}button{{font-size:1.1rem;padding:.4rem 1rem}}</style>
</head><body><h1>回访 / Call-back</h1>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(body=body), status_code=status)


@router.get("/callback/{token}", response_class=HTMLResponse, name="callback_page",
            summary="The resident's call-back form")
def callback_page(token: Annotated[str, Path(max_length=200)], engine: EngineDep
                  ) -> HTMLResponse:
    """A small form: is it fixed, how satisfied (1–5), a comment. No account needed."""
    ticket_id = engine.callback_ticket(token)
    if ticket_id is None:
        return _page("<p>此链接无效。/ This link is not valid.</p>", 404)
    ticket = engine.get(ticket_id)
    what = html.escape(str(ticket.fields.get("description") or ticket.fields.get("category")))
    stars = "".join(f'<label><input type="radio" name="rating" value="{n}" required> {n}</label>'
                    for n in range(5, 0, -1))
    action = html.escape(quote(token, safe=""))
    return _page(f"""<p>{what}</p><form method="post" action="{action}">
<fieldset><legend>问题解决了吗？/ Is it fixed?</legend>
<label><input type="radio" name="fixed" value="true" required> 已解决 / Fixed</label>
<label><input type="radio" name="fixed" value="false"> 未解决 / Not fixed</label></fieldset>
<fieldset><legend>满意度 / Satisfaction (5 = very satisfied)</legend>{stars}</fieldset>
<label>意见 / Comment<br><textarea name="comment" rows="3" cols="30" maxlength="2000">
</textarea></label><button type="submit">提交 / Send</button></form>""")


@router.post("/callback/{token}", summary="The resident answers the call-back",
             dependencies=[Depends(no_if_match)])
async def answer_callback(token: Annotated[str, Path(max_length=200)], request: Request,
                          engine: EngineDep) -> Response:
    """Form fields or JSON: ``fixed`` (true/false), ``rating`` (1–5), ``comment``.

    A link answers once; a used, expired or replaced link is a 409 (``callback-link-invalid``).
    """
    as_json = request.headers.get("content-type", "").startswith("application/json")
    data: dict[str, Any]
    if as_json:
        try:
            data = dict(await request.json())
        except (ValueError, TypeError):
            raise Problem(400, "bad-json", "send a JSON object") from None
    else:
        try:
            # urlencoded as UTF-8 (WHATWG), not Latin-1; text or XML is a 415
            form = await read_form(request, also=("application/json",))
        except FormError as exc:
            page = _page(f"<p>{html.escape(exc.detail)}</p>", exc.status)
            if exc.accepted:
                page.headers["Accept-Post"] = ", ".join(exc.accepted)
            return page
        data = {k: v for k, v in form.items() if isinstance(v, str)}
    fixed, rating = data.get("fixed"), data.get("rating")
    if isinstance(fixed, str):
        fixed = {"true": True, "false": False}.get(fixed.strip().lower())
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if not isinstance(fixed, bool) or not isinstance(rating, int):
        raise Problem(422, "bad-answer", "give fixed (true or false) and rating (1 to 5)")
    comment = data.get("comment")
    comment = comment.strip() if isinstance(comment, str) and comment.strip() else None
    try:
        ticket = engine.answer_callback(token, fixed=fixed, rating=rating, comment=comment)
    except CallbackLinkInvalid as exc:
        if as_json:
            raise
        return _page(f"<p>{html.escape(str(exc))}</p>", 409)
    except InvalidFields:
        if as_json:
            raise
        return _page("<p>请选择1到5的满意度。/ Choose a rating from 1 to 5.</p>", 422)
    if as_json:
        return JSONResponse(_out(engine, ticket).model_dump(mode="json"))
    return _page("<p>谢谢！/ Thank you: your answer was recorded.</p>")
