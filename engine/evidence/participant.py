"""The evidence participant: what each trigger needs, and the attachments of history rows.

Registered on every :class:`~engine.Engine`. For each change (see
:mod:`engine.runtime.participant`):

* **check** — the command's ``evidence`` (``change.data["evidence"]``, see
  :mod:`engine.evidence.model`) is well-formed, names uploads that exist and whose media type
  the lifecycle accepts; then each of the lifecycle's ``requirements`` for this trigger and
  role is met: its ``fields`` hold a value once the command applied (else
  :class:`~engine.errors.InvalidFields`, as for required fields at report) and the command
  carries its ``evidence`` (else :class:`~engine.errors.EvidenceMissing`, naming what is
  missing). Only uploads count: a reference is not a checked file.
* **plan** — one ``gw_attachments`` row per attachment, linked to the history row (ticket
  and ``seq``), with the blob's media type and size.

``reported_by`` binds only tickets reported with uploaded evidence by those roles: the
participant's state of a ticket is the role whose uploads came with its report (read with
the ticket from ``gw_attachments``; the definition checks make every ``reported_by`` role
need evidence at report, so a ticket whose report carried none was reported by another
role). No query runs for a command that carries no evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from engine.definition.schema import EvidenceSpec, RequirementSpec
from engine.errors import EvidenceInvalid, EvidenceMissing, InvalidFields
from engine.evidence.content import kind_of, normalise
from engine.evidence.model import MAX_ITEMS, Item, parse_item
from engine.lifecycle.machine import Lifecycle
from engine.runtime.changes import Change
from engine.runtime.participant import CheckContext, Participant, PlanContext, RowWrite
from engine.store.evidence_tables import attachments, blobs

__all__ = ["DEFAULT_EVIDENCE", "EvidenceRules", "EvidenceState"]

DEFAULT_EVIDENCE = EvidenceSpec()
"""The limits of a lifecycle without an ``evidence`` section."""

_INSERT = insert(attachments)


@dataclass(frozen=True)
class EvidenceState:
    """A ticket's state for this participant.

    Attributes:
        reporter: the role whose uploaded evidence came with the report (None: none came).
    """

    reporter: str | None = None


_EMPTY = EvidenceState()


@dataclass(frozen=True)
class _Rules:
    by_trigger: Mapping[str, tuple[RequirementSpec, ...]]
    evidence: EvidenceSpec


def _blob_rows(conn: Connection, digests: Sequence[str], *,
               lock: bool = False) -> dict[str, dict[str, Any]]:
    """The blob rows of ``digests``; ``lock``: FOR KEY SHARE on PostgreSQL until the commit.

    The check locks them: a refused command's clean-up (:func:`engine.evidence.discard`,
    FOR UPDATE) then either finished first — the blob is gone and the command is refused
    with ``EvidenceInvalid`` — or waits for this command, and sees its attachment.
    """
    stmt = (select(blobs.c.sha256, blobs.c.media_type, blobs.c.size)
            .where(blobs.c.sha256.in_(list(digests))))
    if lock:
        stmt = stmt.with_for_update(read=True, key_share=True)
    return {r["sha256"]: dict(r) for r in conn.execute(stmt).mappings()}


def _need_words(kind: str, tag: str | None, count: int) -> str:
    what = "attachment" if kind == "any" else kind
    plural = "s" if count > 1 and what != "audio" else ""
    return f"{count} {what}{plural}" + (f" tagged {tag!r}" if tag else "")


class EvidenceRules(Participant):
    """See the module docstring. One per engine."""

    key = "evidence"
    state_table = attachments
    state_where = attachments.c.seq == 1  # the report's attachments: who reported with files

    def __init__(self) -> None:
        self._rules: dict[int, _Rules] = {}

    def rules(self, lc: Lifecycle) -> _Rules:
        """The lifecycle's requirements by trigger, and its evidence limits (cached)."""
        found = self._rules.get(id(lc))
        if found is None:
            by: dict[str, list[RequirementSpec]] = {}
            for r in lc.spec.requirements:
                by.setdefault(r.trigger, []).append(r)
            found = _Rules({k: tuple(v) for k, v in by.items()},
                           lc.spec.evidence or DEFAULT_EVIDENCE)
            self._rules[id(lc)] = found
        return found

    def idle(self, step: Literal["check", "plan"], lifecycle: Lifecycle, kind: str,
             trigger: str, from_state: str | None, to_state: str,
             data_keys: frozenset[str]) -> bool:
        """Changes without evidence; for the check, whose trigger has no requirement either."""
        if kind not in ("report", "transition") or "evidence" in data_keys:
            return False
        return step == "plan" or not self.rules(lifecycle).by_trigger.get(trigger)

    def empty(self, lifecycle: Lifecycle) -> EvidenceState:
        """A new ticket: no report evidence yet."""
        return _EMPTY

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> EvidenceState:
        """The role whose uploads came with the report (``seq`` 1)."""
        for r in rows:
            if r["seq"] == 1 and r["sha256"] is not None:
                return EvidenceState(str(r["role"]))
        return _EMPTY

    def writes(self, ticket_id: str, stored: Any, current: Any) -> Iterable[RowWrite]:
        """Nothing: the attachment rows are staged by :meth:`plan` (they are append-only)."""
        return ()

    # -- check ----------------------------------------------------------------------------

    def check(self, ctx: CheckContext, change: Change) -> None:
        """Evidence well-formed and known; the trigger's requirements met (module docstring)."""
        if change.kind not in ("report", "transition"):
            return
        raw = change.data.get("evidence")
        rules = self.rules(change.lifecycle)
        items = self._items(change, raw, rules) if raw else []
        uploads = self._uploads(ctx, change, items, rules) if items else {}
        bound = rules.by_trigger.get(change.trigger)
        if not bound:
            return
        for rule in bound:
            if rule.roles and change.role not in rule.roles:
                continue
            if rule.reported_by and not self._reported_by(ctx, change, items, rule):
                continue
            self._check_rule(change, rule, items, uploads)

    def _items(self, change: Change, raw: object, rules: _Rules) -> list[Item]:
        if not isinstance(raw, list):
            raise EvidenceInvalid(change.ticket_id, 0, "evidence must be a list of objects")
        if len(raw) > MAX_ITEMS:
            raise EvidenceInvalid(change.ticket_id, MAX_ITEMS,
                                  f"one command carries at most {MAX_ITEMS} attachments")
        out = []
        for i, item in enumerate(raw):
            try:
                out.append(parse_item(item, rules.evidence.tags))
            except ValueError as exc:
                raise EvidenceInvalid(change.ticket_id, i, str(exc)) from None
        return out

    def _uploads(self, ctx: CheckContext, change: Change, items: list[Item],
                 rules: _Rules) -> dict[str, dict[str, Any]]:
        digests = [i.upload for i in items if i.upload is not None]
        if not digests:
            return {}
        found = ctx.query(lambda conn: _blob_rows(conn, digests, lock=True))
        accepted = {normalise(t) for t in rules.evidence.media_types}
        for index, item in enumerate(items):
            if item.upload is None:
                continue
            blob = found.get(item.upload)
            if blob is None:
                raise EvidenceInvalid(change.ticket_id, index,
                                      f"names upload {item.upload[:12]}…, which this server "
                                      "does not hold; upload the file first")
            media = str(blob["media_type"])
            if media not in accepted:
                raise EvidenceInvalid(change.ticket_id, index,
                                      f"is a {media} file; lifecycle {change.lifecycle.name!r} "
                                      f"accepts {', '.join(sorted(accepted))}")
            if int(blob["size"]) > rules.evidence.max_bytes:
                raise EvidenceInvalid(change.ticket_id, index,
                                      f"has {blob['size']:,} bytes, more than this lifecycle's "
                                      f"limit of {rules.evidence.max_bytes:,}")
            if item.kind is not None and item.kind != kind_of(media):
                raise EvidenceInvalid(change.ticket_id, index,
                                      f"is said to be a {item.kind} but is a {kind_of(media)} "
                                      f"({media})")
        return found

    def _reported_by(self, ctx: CheckContext, change: Change, items: list[Item],
                     rule: RequirementSpec) -> bool:
        if change.kind == "report":
            return change.role in rule.reported_by and any(i.upload for i in items)
        state = ctx.state(change.ticket_id)
        reporter = state.reporter if isinstance(state, EvidenceState) else None
        return reporter in rule.reported_by

    def _check_rule(self, change: Change, rule: RequirementSpec, items: list[Item],
                    uploads: Mapping[str, Mapping[str, Any]]) -> None:
        missing_fields = {name: f"required by trigger {change.trigger!r}"
                          + (f" for role {change.role!r}" if rule.roles else "")
                          for name in rule.fields if change.fields.get(name) in (None, "")}
        if missing_fields:
            raise InvalidFields(change.ticket_id, missing_fields)
        missing = []
        for need in rule.evidence:
            count = 0
            for item in items:
                if item.upload is None:
                    continue  # a reference is not a checked file
                kind = kind_of(str(uploads[item.upload]["media_type"]))
                if (need.kind in ("any", kind)) and (need.tag is None or need.tag == item.tag):
                    count += 1
            if count < need.min:
                missing.append(_need_words(need.kind, need.tag, need.min)
                               + (f" (has {count})" if count else ""))
        if missing:
            raise EvidenceMissing(change.ticket_id, change.trigger, change.role, missing)

    # -- plan -----------------------------------------------------------------------------

    def plan(self, ctx: PlanContext, change: Change) -> None:
        """Stage one ``gw_attachments`` row per attachment of the change."""
        raw = change.data.get("evidence")
        if not raw or change.kind not in ("report", "transition"):
            return
        rules = self.rules(change.lifecycle)
        items = [parse_item(item, rules.evidence.tags) for item in raw]
        digests = [i.upload for i in items if i.upload is not None]
        found = ctx.query(lambda conn: _blob_rows(conn, digests)) if digests else {}
        for position, item in enumerate(items):
            blob = found.get(item.upload) if item.upload is not None else None
            media = str(blob["media_type"]) if blob is not None else (
                normalise(item.media_type) if item.media_type else None)
            ctx.add_row(_INSERT, {
                "ticket_id": change.ticket_id, "seq": change.seq, "position": position,
                "trigger": change.trigger,
                "kind": kind_of(media) if blob is not None and media else (item.kind or
                                                                           "document"),
                "tag": item.tag, "sha256": item.upload, "ref": item.ref, "media_type": media,
                "size": int(blob["size"]) if blob is not None else None,
                "taken_at": item.taken_at, "added_at": change.at, "actor": change.actor,
                "role": change.role})
        if change.kind == "report" and digests:
            ctx.set_state(change.ticket_id, EvidenceState(change.role))
