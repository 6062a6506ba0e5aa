"""Evidence on the console's action forms: what a trigger needs, and the files sent with it.

The lifecycle's ``requirements`` say which triggers need evidence, for which roles, and (with
``reported_by``) for which tickets; :func:`needs_for` reads them for the form's trigger, the
key's role and the ticket (who reported it with uploaded evidence, from its attachments), so
the form asks for a file where the engine will want one, in words: "须附 1 张照片（标签：处置后）
· 可用格式 JPEG、PNG… · 每个文件不超过 20 MB". A work order's ``done`` transition gets the
needs of its ticket's ``resolve`` (the engine resolves the ticket with the work's evidence).

The files go through :func:`adapters.http.evidence.store_files` — the path of ``POST
/uploads`` — inside :meth:`Engine.uploads <engine.Engine.uploads>`, and the trigger is fired
with them; the engine checks the requirements (the one rule), so the form asks for files but
does not refuse on its own. A refused file or trigger removes the files the form stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile

from adapters.http.console.display import KIND_WORDS
from adapters.http.console.i18n import title
from engine import Engine, Ticket
from engine.evidence import kind_of

__all__ = ["FIELD", "Need", "evidence_items", "files_of", "needs_for", "needs_of_rules"]

FIELD = "evidence"
"""Form parts ``evidence_<n>`` (files) and ``evidence_<n>_tag`` (the tag they are sent with)."""

_DEFAULT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "video/mp4",
                  "audio/mpeg", "application/pdf")


@dataclass(frozen=True)
class Need:
    """One kind of evidence a form's trigger needs.

    Attributes:
        name: the form part (``evidence_0``); tag: the tag its files are sent with.
        kind: photo, video, audio, document or any; count: how many (at least).
        accept: the media types accepted for it (the input's ``accept``).
        text: what it is, in the page's language.
        limits: the accepted formats and the size limit, in words.
    """

    name: str
    tag: str | None
    kind: str
    count: int
    accept: str
    text: str
    limits: str


def _reporter(engine: Engine, ticket_id: str) -> str | None:
    """The role whose uploaded evidence came with the report (the engine's rule)."""
    for a in engine.attachments(ticket_id):
        if a.seq == 1 and a.sha256 is not None:
            return a.role
    return None


def _size(n: int, lang: str) -> str:
    mib = n / (1024 * 1024)
    if mib >= 1:
        return f"{mib:g} MB"
    return f"{n / 1024:g} KB" if n >= 1024 else (f"{n} 字节" if lang == "zh" else f"{n} bytes")


def _format(media_type: str) -> str:
    sub = media_type.split("/", 1)[1].upper()
    return {"JPEG": "JPEG", "MPEG": "MP3", "QUICKTIME": "MOV"}.get(sub, sub)


def _need(spec: Any, index: int, kind: str, tag: str | None, count: int, lang: str) -> Need:
    evidence = spec.evidence
    types = list(evidence.media_types) if evidence is not None else list(_DEFAULT_TYPES)
    max_bytes = evidence.max_bytes if evidence is not None else 20 * 1024 * 1024
    fitting = [t for t in types if kind == "any" or kind_of(t) == kind]
    tags = evidence.tags if evidence is not None else {}
    tag_title = title(tags[tag].title, lang, tag) if tag and tag in tags else tag
    what = title(KIND_WORDS.get(kind), lang, kind)
    sep = "、" if lang == "zh" else ", "
    formats = sep.join(dict.fromkeys(_format(t) for t in fitting))
    if lang == "zh":
        unit = "张" if kind == "photo" else "个"
        text = f"须附 {count} {unit}{what}" + (f"（标签：{tag_title}）" if tag else "")
        limits = f"可用格式 {formats} · 每个文件不超过 {_size(max_bytes, lang)}"
    else:
        plural = "s" if count > 1 and kind != "audio" else ""
        text = f"Needs {count} {what.lower()}{plural}" + (f" tagged “{tag_title}”" if tag
                                                          else "")
        limits = f"Formats {formats} · at most {_size(max_bytes, lang)} a file"
    return Need(f"{FIELD}_{index}", tag, kind, count, ",".join(fitting), text, limits)


def _rules(spec: Any, trigger: str, role: str) -> list[Any]:
    return [r for r in spec.requirements if r.trigger == trigger and r.evidence
            and (not r.roles or role in r.roles)]


def needs_of_rules(lc: Any, trigger: str, role: str, lang: str) -> list[Need]:
    """What ``lc``'s requirements ask of ``role`` firing ``trigger``, whoever reported."""
    out: list[Need] = []
    for rule in _rules(lc.spec, trigger, role):
        for need in rule.evidence:
            out.append(_need(lc.spec, len(out), need.kind, need.tag, need.min, lang))
    return out


def needs_for(engine: Engine, lc: Any, ticket: Ticket, trigger: str, role: str, lang: str,
              parent: tuple[Ticket, Any] | None = None) -> list[Need]:
    """The evidence ``role`` must send to fire ``trigger`` on ``ticket`` (empty: none).

    Args:
        engine: the engine (the ticket's attachments say who reported it).
        lc: the ticket's lifecycle (its own version).
        ticket: the ticket.
        trigger: the form's trigger.
        role: the key's role.
        lang: ``zh`` or ``en``.
        parent: a work order's ticket and its lifecycle: a transition of the work order into
            ``done`` needs what the ticket's ``resolve`` needs from a department.
    """
    target, target_lc, target_trigger, target_role = ticket, lc, trigger, role
    if parent is not None:
        if not any(t.dest == "done" for t in lc.transitions_for(ticket.state, trigger)):
            return []
        target, target_lc = parent
        target_trigger, target_role = "resolve", "department"
    spec = target_lc.spec
    rules = _rules(spec, target_trigger, target_role)
    if not rules:
        return []
    reporter = _reporter(engine, target.id) if any(r.reported_by for r in rules) else None
    out: list[Need] = []
    for rule in rules:
        if rule.reported_by and reporter not in rule.reported_by:
            continue
        for need in rule.evidence:
            out.append(_need(lc.spec if parent is not None else spec, len(out), need.kind,
                             need.tag, need.min, lang))
    return out


def files_of(form: FormData, needs_max: int = 20) -> list[tuple[str | None, UploadFile]]:
    """The files of a submitted form, each with its tag: ``[(tag, file), ...]``.

    A file input left empty is sent by browsers as a part without a name and bytes: skipped.
    """
    out = []
    for n in range(needs_max):
        name = f"{FIELD}_{n}"
        if name not in form:
            continue
        raw_tag = form.get(f"{name}_tag")
        tag = raw_tag.strip() or None if isinstance(raw_tag, str) else None
        for part in form.getlist(name):
            if isinstance(part, UploadFile) and (part.filename or part.size):
                out.append((tag, part))
    return out


def evidence_items(tags: Sequence[str | None], digests: Sequence[str]) -> list[dict[str, Any]]:
    """A command's ``evidence`` for stored files: ``{"upload": sha256, "tag": ...}`` each."""
    return [{"upload": sha, **({"tag": tag} if tag else {})}
            for tag, sha in zip(tags, digests, strict=True)]
