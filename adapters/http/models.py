"""The JSON shapes of the HTTP API (pydantic models, shown in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine import HistoryEntry, Ticket, Timer
from engine.evidence import Attachment
from engine.validation import MAX_TICKET_ID, TICKET_ID_PATTERN

__all__ = ["AttachmentOut", "BlobOut", "EvidenceIn", "FireIn", "HistoryOut", "LifecycleOut",
           "ReportIn", "StateOut", "TicketDetail", "TicketList", "TicketOut", "TimerOut",
           "TransitionOut"]


class EvidenceIn(BaseModel):
    """One attachment a command carries: an upload (its SHA-256) or a reference."""

    model_config = ConfigDict(extra="forbid")

    upload: str | None = Field(None, description="The sha256 POST /uploads answered.",
                               json_schema_extra={"pattern": "^[0-9a-f]{64}$"})
    ref: str | None = Field(None, max_length=2000,
                            description="A reference to a file held elsewhere (kept, not "
                                        "fetched; does not count for requirements).")
    kind: str | None = Field(None, description="photo, video, audio or document (needed "
                                               "with ref).")
    tag: str | None = Field(None, description="An evidence tag of the lifecycle (before, "
                                              "after).")
    taken_at: str | None = Field(None, description="When it was taken (ISO 8601 instant with "
                                                   "a UTC offset).")
    media_type: str | None = Field(None, max_length=128,
                                   description="A reference's media type, if known.")

    def plain(self) -> dict[str, Any]:
        """The object the engine takes (keys given only)."""
        return self.model_dump(exclude_none=True)


class ReportIn(BaseModel):
    """A new ticket."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] = Field(description="Ticket fields, as the lifecycle declares them.")
    lifecycle: str | None = Field(None, description="Lifecycle name; default: the app's first.")
    ticket_id: str | None = Field(
        None, description="The id to use; generated when omitted. ASCII letters, digits and "
                          "- _ . : ~ +, in segments joined by /; 1 to 64 characters. Checked "
                          "by the engine (InvalidFields naming ticket_id).",
        json_schema_extra={"pattern": TICKET_ID_PATTERN, "maxLength": MAX_TICKET_ID})
    level: str | None = Field(None, description="Initial whistle level; default the lowest.")
    reason: str | None = Field(None, description="Free text kept in history.")
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=20,
                                       description="Attachments (uploads by sha256).")


class FireIn(BaseModel):
    """A trigger fired on a ticket."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, description="Required by transitions with reason_required.")
    fields: dict[str, Any] = Field(default_factory=dict,
                                   description="Fields to update with the transition "
                                               "(null clears a field).")
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=20,
                                       description="Attachments (uploads by sha256).")


class TicketOut(BaseModel):
    """A ticket as stored."""

    id: str
    lifecycle: str
    version: int
    state: str
    level: str
    final: bool = Field(description="True when the state is final (the ticket is closed).")
    fields: dict[str, Any]
    overdue: bool
    created_at: datetime
    updated_at: datetime
    row_version: int

    @classmethod
    def of(cls, ticket: Ticket, final: bool) -> TicketOut:
        """Build from an engine :class:`~engine.Ticket`."""
        return cls(id=ticket.id, lifecycle=ticket.lifecycle, version=ticket.version,
                   state=ticket.state, level=ticket.level, final=final, fields=ticket.fields,
                   overdue=ticket.overdue, created_at=ticket.created_at,
                   updated_at=ticket.updated_at, row_version=ticket.row_version)


class HistoryOut(BaseModel):
    """One history row."""

    seq: int
    at: datetime
    kind: str
    trigger: str
    from_state: str | None
    to_state: str
    from_level: str | None
    to_level: str
    actor: str
    role: str
    reason: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryOut:
        """Build from an engine :class:`~engine.HistoryEntry`."""
        return cls(seq=h.seq, at=h.at, kind=h.kind, trigger=h.trigger, from_state=h.from_state,
                   to_state=h.to_state, from_level=h.from_level, to_level=h.to_level,
                   actor=h.actor, role=h.role, reason=h.reason, data=h.data)


class TimerOut(BaseModel):
    """A deadline timer."""

    id: int
    name: str
    state: str | None
    due_at: datetime
    status: str
    fired_at: datetime | None

    @classmethod
    def of(cls, t: Timer) -> TimerOut:
        """Build from an engine :class:`~engine.Timer`."""
        return cls(id=t.id, name=t.name, state=t.state, due_at=t.due_at, status=t.status,
                   fired_at=t.fired_at)


class BlobOut(BaseModel):
    """A stored file (POST /uploads)."""

    sha256: str = Field(description="What a command's evidence names: {\"upload\": sha256}.")
    media_type: str
    kind: str
    size: int
    new: bool = Field(description="False when the same bytes had been uploaded before.")


class AttachmentOut(BaseModel):
    """An attachment of a ticket's history row."""

    id: int
    seq: int = Field(description="The history row it came with.")
    trigger: str
    kind: str
    tag: str | None
    media_type: str | None
    size: int | None
    sha256: str | None
    ref: str | None
    taken_at: datetime | None
    added_at: datetime
    actor: str
    role: str
    download: str | None = Field(description="Where its bytes are (a key with access to the "
                                             "ticket); None for a reference.")

    @classmethod
    def of(cls, a: Attachment, download: str | None) -> AttachmentOut:
        """Build from an engine :class:`~engine.evidence.Attachment`."""
        return cls(id=a.id, seq=a.seq, trigger=a.trigger, kind=a.kind, tag=a.tag,
                   media_type=a.media_type, size=a.size, sha256=a.sha256, ref=a.ref,
                   taken_at=a.taken_at, added_at=a.added_at, actor=a.actor, role=a.role,
                   download=download)


class TicketDetail(BaseModel):
    """A ticket with its history, its timers and the triggers the caller may fire."""

    ticket: TicketOut
    history: list[HistoryOut]
    timers: list[TimerOut]
    triggers: list[str] = Field(description="The triggers the caller's key may fire now: of "
                                            "the ticket's own lifecycle version, its role, "
                                            "its level's handler rule and the guards.")
    state_triggers: list[str] = Field(default_factory=list,
                                      description="Every trigger with a transition out of the "
                                                  "state in the ticket's own version.")
    evidence: list[AttachmentOut] = Field(default_factory=list,
                                          description="Attachments, in history order.")


class StateOut(BaseModel):
    """A state of a lifecycle."""

    name: str
    title: dict[str, str]
    final: bool
    triggers: list[str] = Field(description="Triggers with a transition out of it.")


class TransitionOut(BaseModel):
    """A transition of a lifecycle."""

    trigger: str
    title: dict[str, str]
    source: list[str]
    dest: str
    roles: list[str]
    reason_required: bool


class LifecycleOut(BaseModel):
    """A lifecycle as served: what a client needs to offer the right actions."""

    name: str
    version: int
    title: dict[str, str]
    initial: str
    levels: list[str]
    report_roles: list[str]
    states: list[StateOut]
    transitions: list[TransitionOut]
    fields: dict[str, dict[str, Any]] = Field(description="Field declarations (type, "
                                                          "required, choices, title).")
    categories: dict[str, dict[str, Any]]
    diagram: str = Field(description="Mermaid stateDiagram-v2 text.")


class TicketList(BaseModel):
    """A page of tickets."""

    items: list[TicketOut]
    total: int
    limit: int
    offset: int
