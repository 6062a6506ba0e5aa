"""The definition catalog: deployed lifecycle versions and their compiled Machines.

``gw_definitions`` stores each distinct source text once per lifecycle name: deploying the
same text again gives the existing version, a changed text the next version number. The
catalog compiles each version once per engine (one shared ``transitions`` Machine per
version, :class:`~engine.lifecycle.machine.Lifecycle`) and recompiles versions it meets in
the store that it has not compiled (a ticket reported by another process or an older
release). New reports use the newest version valid at the report's instant
(:func:`valid_version`); running tickets stay on theirs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from engine.definition.loader import Definition, load_definition, parse_definition
from engine.lifecycle.machine import Lifecycle
from engine.lifecycle.registry import Registry
from engine.runtime.model import DefinitionVersion
from engine.store.tables import definitions

__all__ = ["Catalog", "is_valid_at"]


def is_valid_at(lc: Lifecycle, at: datetime) -> bool:
    """True if ``at`` (aware) lies in the version's validity period.

    ``valid_from <= at < valid_until``; a version without a period is always valid.
    """
    spec = lc.spec
    if spec.valid_from and at < datetime.fromisoformat(spec.valid_from):
        return False
    return not (spec.valid_until and at >= datetime.fromisoformat(spec.valid_until))


class Catalog:
    """Lifecycle versions known to one engine.

    Args:
        registry: the host's guards and actions, compiled into every version.

    Thread-safe: compiled versions are shared by every thread of the engine.
    """

    def __init__(self, registry: Registry):
        self.registry = registry
        self._compiled: dict[int, Lifecycle] = {}
        self._versions: dict[int, DefinitionVersion] = {}
        self._current: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- deploy ---------------------------------------------------------------------------

    def compile(self, lifecycle: str | Definition) -> tuple[Definition, Lifecycle]:
        """Load (bundled name, path or Definition) and compile a lifecycle, checking callbacks.

        Raises:
            UnknownDefinition, DefinitionError: it cannot be loaded, or it names a guard or
                action the registry lacks.
        """
        definition = (lifecycle if isinstance(lifecycle, Definition)
                      else load_definition(lifecycle))
        return definition, Lifecycle(definition, self.registry)

    def store(self, conn: Connection, definition: Definition, compiled: Lifecycle,
              now: datetime, *, on_insert: Callable[[Callable[[], None]], None] | None = None,
              ) -> DefinitionVersion:
        """Record a compiled version in ``gw_definitions`` (inside ``conn``'s transaction).

        Returns the existing version for a known digest, else inserts the next version.

        Args:
            conn: the transaction's connection.
            definition: the version.
            compiled: its compiled Machine.
            now: when it is deployed (``created_at``).
            on_insert: when a new row is inserted, called with a function that makes this
                catalog forget the new version again; the caller runs it if the
                transaction does not commit (``UnitOfWork.on_rollback``), so that a
                rolled-back version is not served from the cache (nor its id, which SQLite
                gives out again, taken for another version).
        """
        row = conn.execute(
            select(definitions.c.id, definitions.c.version).where(
                definitions.c.name == definition.name,
                definitions.c.digest == definition.digest)
        ).first()
        inserted = row is None
        if row is None:
            latest = conn.execute(select(func.max(definitions.c.version)).where(
                definitions.c.name == definition.name)).scalar()
            version = (latest or 0) + 1
            def_id = conn.execute(insert(definitions).values(
                name=definition.name, version=version, digest=definition.digest,
                source=definition.source, created_at=now,
            )).inserted_primary_key[0]  # type: ignore[index]
        else:
            def_id, version = row
        info = DefinitionVersion(int(def_id), definition.name, int(version), definition.digest)
        with self._lock:
            previous = self._current.get(definition.name)
            self._compiled[info.id] = compiled
            self._versions[info.id] = info
            self._current[definition.name] = info.id
        if inserted and on_insert is not None:
            on_insert(lambda: self._forget(info, previous))
        return info

    def _forget(self, info: DefinitionVersion, previous: int | None) -> None:
        """Drop a version whose insert was rolled back (idempotent)."""
        with self._lock:
            self._compiled.pop(info.id, None)
            self._versions.pop(info.id, None)
            if self._current.get(info.name) == info.id:
                if previous is None:
                    self._current.pop(info.name, None)
                else:
                    self._current[info.name] = previous

    def stored_id(self, conn: Connection, definition: Definition) -> int | None:
        """The id of the deployed version with ``definition``'s content (None: not deployed)."""
        found = conn.execute(select(definitions.c.id).where(
            definitions.c.name == definition.name,
            definitions.c.digest == definition.digest)).scalar()
        return None if found is None else int(found)

    # -- lookups --------------------------------------------------------------------------

    def cached_current(self, name: str) -> int | None:
        """The newest version of ``name`` this engine knows, without reading (None: unknown)."""
        return self._current.get(name)

    def current_id(self, conn: Connection, name: str) -> int | None:
        """The id of the newest deployed version of ``name`` (None: never deployed)."""
        with self._lock:
            known = self._current.get(name)
        if known is not None:
            return known
        newest = conn.execute(
            select(definitions.c.id).where(definitions.c.name == name)
            .order_by(definitions.c.version.desc()).limit(1)).scalar()
        if newest is None:
            return None
        self.by_id(conn, int(newest))
        with self._lock:
            self._current.setdefault(name, int(newest))
            return self._current[name]

    def known(self, def_id: int) -> Lifecycle | None:
        """The compiled version ``def_id`` if this engine has it already (no database read)."""
        return self._compiled.get(def_id)

    def by_id(self, conn: Connection, def_id: int) -> Lifecycle:
        """The compiled version ``def_id``, compiled from its stored source on first use.

        A stored version naming a guard or action this engine's registry lacks still
        compiles; firing a transition that needs it is refused (HostCallbackFailed).
        """
        compiled = self._compiled.get(def_id)
        if compiled is not None:
            return compiled
        row = conn.execute(select(definitions).where(definitions.c.id == def_id)).mappings().one()
        definition = parse_definition(row["source"], file=f"<{row['name']} v{row['version']}>")
        compiled = Lifecycle(definition, self.registry, strict=False)
        with self._lock:
            self._compiled.setdefault(def_id, compiled)
            self._versions.setdefault(def_id, DefinitionVersion(
                def_id, row["name"], row["version"], row["digest"]))
            return self._compiled[def_id]

    def info(self, def_id: int) -> DefinitionVersion:
        """The version's name, number and digest (it must have been compiled)."""
        return self._versions[def_id]

    def id_of(self, name: str, version: int) -> int | None:
        """The id of a compiled version by name and number (None: not compiled here)."""
        with self._lock:
            return next((i for i, v in self._versions.items()
                         if (v.name, v.version) == (name, version)), None)

    def valid_version(self, conn: Connection, name: str, current: int, at: datetime) -> int:
        """The id of the newest deployed version of ``name`` valid at ``at``.

        If none is valid, ``current`` (the report is then refused by the time rules with
        :class:`~engine.timing.errors.LifecycleNotValid`).
        """
        if is_valid_at(self.by_id(conn, current), at):
            return current
        ids = conn.execute(select(definitions.c.id).where(definitions.c.name == name)
                           .order_by(definitions.c.version.desc())).scalars().all()
        for def_id in ids:
            if is_valid_at(self.by_id(conn, int(def_id)), at):
                return int(def_id)
        return current

    def versions(self, conn: Connection) -> list[DefinitionVersion]:
        """Every deployed lifecycle version, by name then version."""
        rows = conn.execute(
            select(definitions.c.id, definitions.c.name, definitions.c.version,
                   definitions.c.digest).order_by(definitions.c.name, definitions.c.version)
        ).all()
        return [DefinitionVersion(*r) for r in rows]

    def ids_of(self, conn: Connection, name: str) -> list[int]:
        """Ids of every deployed version of ``name``, oldest first."""
        return [int(i) for i in conn.execute(
            select(definitions.c.id).where(definitions.c.name == name)
            .order_by(definitions.c.version)).scalars()]
