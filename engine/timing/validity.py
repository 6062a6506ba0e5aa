"""Validity periods of lifecycle versions: which version a new report runs on.

A new report runs on the newest deployed version of its lifecycle that is valid at the
report's instant (``valid_from <= now < valid_until``; a version without a period is always
valid). So a version can be deployed ahead of the date it takes over: reports keep using the
previous version until then. If no version is valid, the newest one is used and the report is
refused with :class:`~engine.timing.errors.LifecycleNotValid` (see :mod:`engine.timing.rules`).
Running tickets always stay on the version they started with.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.definition.schema import LifecycleSpec
from engine.store.tables import definitions

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

__all__ = ["is_valid_at", "version_valid_at"]


def is_valid_at(spec: LifecycleSpec, at: datetime) -> bool:
    """True if ``at`` (aware) lies in the version's validity period."""
    if spec.valid_from and at < datetime.fromisoformat(spec.valid_from):
        return False
    return not (spec.valid_until and at >= datetime.fromisoformat(spec.valid_until))


def version_valid_at(engine: Engine, name: str, current: int, at: datetime) -> int:
    """The id of the newest deployed version of ``name`` valid at ``at`` (else ``current``)."""
    if is_valid_at(engine._lifecycles[current].spec, at):
        return current
    with engine._read() as conn:
        ids = conn.execute(select(definitions.c.id).where(definitions.c.name == name)
                           .order_by(definitions.c.version.desc())).scalars().all()
        for def_id in ids:
            if is_valid_at(engine._lifecycle_by_id(conn, def_id).spec, at):
                return int(def_id)
    return current
