"""Call-back links: issued by the centre, answered once by the resident, without an account.

:func:`issue_link` gives a ticket in its call-back step a new random token (256 bits from
``secrets``; an earlier link of the ticket stops working) and stores only its SHA-256, valid
until the call-back's deadline. The centre sends the link to the resident (SMS, WeChat); it
is shown once. :func:`answer_link` takes the token back with the resident's verdict (fixed or
not, a 1–5 rating, a comment): the token's hash is looked up, the link must be unused, not
expired and its ticket still in the call-back step; then the answer is fired as role
``resident`` and the link marked used — in one transaction, so a link answers once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from engine.callbacks.participant import CallbackLink, Callbacks
from engine.errors import CallbackLinkInvalid, CommandRefused, ConfigurationError, InvalidFields
from engine.runtime.kernel import Kernel
from engine.runtime.model import Actor, Ticket
from engine.store.evidence_tables import callback_links

__all__ = ["DEFAULT_VALIDITY", "answer_link", "hash_token", "issue_link", "link_ticket"]

DEFAULT_VALIDITY = timedelta(days=3)
"""How long a link stays valid when its ticket has no pending call-back deadline."""


def hash_token(token: str) -> str:
    """``sha256:<hex>`` of a call-back token (what is stored)."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_link(kernel: Kernel, participant: Callbacks, ticket_id: str, *,
               actor: Actor) -> str:
    """A new single-use call-back token for a ticket in its call-back step.

    Returns:
        The token (43 URL-safe characters): put it in the link sent to the resident. It is
        not stored; a new one replaces it.

    Raises:
        TicketNotFound: no such ticket.
        CallbackLinkInvalid: ``not_in_callback`` — the ticket is not in its call-back step.
    """
    token = secrets.token_urlsafe(32)
    with kernel.compound(participant) as unit:
        rec = unit.ticket(ticket_id)
        cb = rec.lifecycle.spec.callback
        if cb is None or rec.state != cb.state:
            raise CallbackLinkInvalid(ticket_id, "not_in_callback")
        now = unit.now
        timer = rec.timers.get(cb.deadline)
        expires = timer.due_at if timer is not None else now + DEFAULT_VALIDITY
        unit.set_state(ticket_id, CallbackLink(hash_token(token), now, actor.id[:128], expires))
    return token


def link_ticket(kernel: Kernel, token: str) -> str | None:
    """The id of the ticket a token was issued for (used or not), or None."""
    if not token or len(token) > 200:
        return None
    with kernel.reading() as conn:
        found = conn.execute(select(callback_links.c.ticket_id).where(
            callback_links.c.token_hash == hash_token(token))).scalar()
    return str(found) if found is not None else None


def answer_link(kernel: Kernel, participant: Callbacks, token: str, *, fixed: bool,
                rating: int, comment: str | None = None) -> Ticket:
    """The resident's verdict through the link: fires ``confirm`` or ``not_fixed``.

    Args:
        kernel: the engine's kernel.
        participant: the engine's call-back participant.
        token: the token of the link.
        fixed: whether the problem is fixed.
        rating: satisfaction, 1 (very unsatisfied) to 5 (very satisfied).
        comment: free text (optional; the reason of a ``not_fixed`` answer when given).

    Returns:
        The ticket after the answer.

    Raises:
        CallbackLinkInvalid: ``unknown``, ``used``, ``expired`` or ``not_in_callback``.
        InvalidFields: the rating is not 1–5, or the comment is too long for its field.
    """
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidFields("(call-back)", {"rating": "a whole number from 1 to 5"})
    ticket_id = link_ticket(kernel, token)
    if ticket_id is None:
        raise CallbackLinkInvalid("(unknown)", "unknown")
    try:
        with kernel.compound(participant) as unit:
            rec = unit.ticket(ticket_id)
            link = unit.state(ticket_id)
            cb = rec.lifecycle.spec.callback
            if cb is None:
                raise ConfigurationError(f"lifecycle {rec.lifecycle.name!r} has no callback")
            if not isinstance(link, CallbackLink) or link.token_hash != hash_token(token):
                raise CallbackLinkInvalid(ticket_id, "unknown")  # replaced by a newer link
            if link.used_at is not None:
                raise CallbackLinkInvalid(ticket_id, "used")
            now = unit.now
            if now > link.expires_at:
                raise CallbackLinkInvalid(ticket_id, "expired")
            if rec.state != cb.state:
                raise CallbackLinkInvalid(ticket_id, "not_in_callback")
            fields: dict[str, object] = {cb.rating: rating}
            if comment and cb.comment:
                fields[cb.comment] = comment
            actor = Actor(f"resident:{ticket_id}"[:128], "resident")
            if fixed:
                unit.fire(ticket_id, cb.confirm, actor=actor, reason=comment or None,
                          fields=fields)
            else:
                unit.fire(ticket_id, cb.not_fixed, actor=actor,
                          reason=comment or "the resident says it is not fixed", fields=fields)
            unit.set_state(ticket_id, replace(link, used_at=now))
            return kernel.handler.snapshot(unit.ticket(ticket_id))
    except CallbackLinkInvalid:
        raise
    except CommandRefused as exc:
        if isinstance(exc, InvalidFields):
            raise
        raise CallbackLinkInvalid(ticket_id, "not_in_callback") from exc
