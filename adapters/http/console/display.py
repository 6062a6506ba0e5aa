"""Values as a person reads them: display titles from the lifecycle, instants in local time.

A history row stores what the engine got: ``category = blocked_drain``, ``target_at =
2024-06-10T04:59:59+00:00``, ``evidence = [{"upload": "<sha256>", "tag": "after"}]``. The
ticket page shows them with the titles the lifecycle declares (categories, departments,
outside organisations, suspension causes, evidence tags) and instants in the page's zone
with its label (:mod:`.zones`): ``问题类别 = 下水道堵塞``, ``办结时限 = 2024年6月9日（周日）23:59
UTC−5``, ``照片（处置后）``. A value with no declared title is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.http.console.i18n import duration, title, words
from adapters.http.console.zones import PageZone
from engine import HistoryEntry
from engine.evidence import Attachment

__all__ = ["KIND_WORDS", "evidence_item", "field_value", "history_details"]

KIND_WORDS: dict[str, dict[str, str]] = {
    "photo": {"zh": "照片", "en": "Photo"},
    "video": {"zh": "视频", "en": "Video"},
    "audio": {"zh": "录音", "en": "Audio recording"},
    "document": {"zh": "文件", "en": "Document"},
    "any": {"zh": "附件", "en": "Attachment"},
}
"""The kinds of evidence, in words."""

_DATA_WORDS: dict[str, dict[str, str]] = {
    "due_at": {"zh": "到期", "en": "Due"},
    "new_due": {"zh": "新时限", "en": "New due"},
    "original_due": {"zh": "原时限", "en": "Was due"},
    "reply_due": {"zh": "答复时限", "en": "Reply due"},
    "department": {"zh": "部门", "en": "Department"},
    "cause": {"zh": "原因", "en": "Cause"},
    "elapsed_seconds": {"zh": "已用", "en": "Used"},
    "target_seconds": {"zh": "目标", "en": "Target"},
    "suspended_seconds": {"zh": "挂起时长", "en": "Suspended for"},
}
"""The keys of a history row's data that are shown (the others are the engine's own)."""


def _instant(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and "T" in value:
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return at if at.tzinfo is not None else None
    return None


def _named(table: Mapping[str, Any], value: object, lang: str) -> str | None:
    found = table.get(str(value)) if isinstance(value, str) else None
    return title(found.title, lang, str(value)) if found is not None else None


def field_value(name: str, value: object, spec: Any, lang: str, zone: PageZone,
                parent_spec: Any | None = None) -> str:
    """A field's value in words: a declared title, a local instant, yes/no, or as it is."""
    if value is None or value == "":
        return "–"
    specs = [s for s in (spec, parent_spec) if s is not None]
    for s in specs:
        if name == "category" and (found := _named(s.categories, value, lang)):
            return found
        if name == "department" and (found := _named(s.departments, value, lang)):
            return found
        handoff_field = s.handoff.field if s.handoff is not None else "outside_org"
        if name == handoff_field and (found := _named(s.organisations, value, lang)):
            return found
    if name == "role" and parent_spec is not None and value in ("lead", "co"):
        return words(lang)[str(value)]
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    fld = spec.fields.get(name)
    at = _instant(value)
    if at is not None and (fld is None or fld.type in ("datetime", "string")):
        return zone.at(at, lang)
    return str(value)


def evidence_item(kind: str, tag: str | None, spec: Any, lang: str) -> str:
    """``照片（处置后）`` / ``Photo (After)``: an attachment's kind and its tag's title."""
    what = title(KIND_WORDS.get(kind), lang, kind)
    if not tag:
        return what
    tags = spec.evidence.tags if spec.evidence is not None else {}
    tag_title = title(tags[tag].title, lang, tag) if tag in tags else tag
    return f"{what}（{tag_title}）" if lang == "zh" else f"{what} ({tag_title})"


def history_details(h: HistoryEntry, spec: Any, lang: str, zone: PageZone,
                    attachments: Sequence[Attachment], parent_spec: Any | None = None
                    ) -> list[str]:
    """What a history row carried, in words: fields set, evidence, due instants, causes.

    Args:
        h: the history row.
        spec: its ticket's lifecycle spec.
        lang: ``zh`` or ``en``.
        zone: the page's zone.
        attachments: the ticket's attachments of this row (``Attachment.seq == h.seq``).
        parent_spec: a work order's ticket's lifecycle spec (None: not a work order).
    """
    out = []
    for k, v in (h.data.get("fields") or {}).items():
        fld = spec.fields.get(k)
        shown = field_value(k, v, spec, lang, zone, parent_spec)
        out.append(f"{title(fld.title if fld else None, lang, k)} = {shown}")
    if attachments:
        for a in attachments:
            item = evidence_item(a.kind, a.tag, spec, lang)
            if a.taken_at is not None:
                taken = zone.at(a.taken_at, lang)
                item += f"，拍摄于{taken}" if lang == "zh" else f", taken {taken}"
            out.append(item)
    else:
        for raw in h.data.get("evidence") or []:
            if isinstance(raw, Mapping):
                out.append(evidence_item(str(raw.get("kind") or "any"), raw.get("tag"),
                                         spec, lang))
    for key, label in _DATA_WORDS.items():
        if key not in h.data or h.data[key] in (None, ""):
            continue
        value = h.data[key]
        if key.endswith("_seconds") and isinstance(value, int | float):
            shown = duration(timedelta(seconds=value), lang)
        elif key == "cause" and spec.oversight is not None and \
                spec.oversight.suspension is not None:
            shown = _named(spec.oversight.suspension.causes, value, lang) or str(value)
        elif key == "department":
            shown = field_value("department", value, spec, lang, zone, parent_spec)
        elif (at := _instant(value)) is not None:
            shown = zone.at(at, lang)
        else:
            shown = str(value)
        out.append(f"{title(label, lang, key)} {shown}")
    return out
