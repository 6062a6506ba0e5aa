"""Refusals that come from time rules (lags, duty hours, validity periods).

They join the tree in :mod:`engine.errors` under ``CommandRefused``::

    CommandRefused
    ├── MinimumLagNotReached     a transition came too soon after an earlier one (min lag)
    ├── OutsideWorkingHours      a transition restricted to a calendar's hours came outside them
    └── LifecycleNotValid        a report fell outside the lifecycle version's validity period
"""

from __future__ import annotations

from datetime import datetime

from engine.errors import CommandRefused

__all__ = ["LifecycleNotValid", "MinimumLagNotReached", "OutsideWorkingHours"]


class MinimumLagNotReached(CommandRefused):
    """``trigger`` came sooner after ``since`` than the lifecycle's lag ``lag`` allows.

    Attributes:
        ticket_id, trigger: the refused command.
        lag: the lag's name in the lifecycle file; ``since``: its earlier trigger.
        since_at: when ``since`` last fired; ``earliest``: the first instant ``trigger`` is
            allowed (aware UTC).
    """

    def __init__(self, ticket_id: str, trigger: str, lag: str, since: str,
                 since_at: datetime, earliest: datetime):
        self.trigger = trigger
        self.lag = lag
        self.since = since
        self.since_at = since_at
        self.earliest = earliest
        super().__init__(
            ticket_id,
            f"{trigger!r} on ticket {ticket_id!r} is too early: lag {lag!r} allows it from "
            f"{earliest.isoformat()} ({since!r} was at {since_at.isoformat()}); try again then",
        )


class OutsideWorkingHours(CommandRefused):
    """``trigger`` may only be fired during the working hours of ``calendar``.

    Attributes:
        ticket_id, trigger: the refused command.
        calendar: the calendar's name; ``next_opening``: its next working instant (aware UTC).
    """

    def __init__(self, ticket_id: str, trigger: str, calendar: str, next_opening: datetime):
        self.trigger = trigger
        self.calendar = calendar
        self.next_opening = next_opening
        super().__init__(
            ticket_id,
            f"{trigger!r} on ticket {ticket_id!r} is only allowed during the working hours of "
            f"calendar {calendar!r}; the next opens at {next_opening.isoformat()}",
        )


class LifecycleNotValid(CommandRefused):
    """A ticket was reported outside the validity period of the lifecycle version.

    Attributes:
        ticket_id: the ticket that was not created.
        lifecycle: its name; ``valid_from`` / ``valid_until``: the period (aware, or None);
        at: the report's instant.
    """

    def __init__(self, ticket_id: str, lifecycle: str, at: datetime,
                 valid_from: datetime | None, valid_until: datetime | None):
        self.lifecycle = lifecycle
        self.at = at
        self.valid_from = valid_from
        self.valid_until = valid_until
        super().__init__(
            ticket_id,
            f"lifecycle {lifecycle!r} is valid from {valid_from or 'the beginning'} until "
            f"{valid_until or 'further notice'}, not at {at.isoformat()}; deploy a version "
            "valid now",
        )
