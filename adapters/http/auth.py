"""API keys: each key acts as one actor in one role, and a department key for one department.

A keys file holds no key, only each key's SHA-256 hash, under a name for its holder (strict
YAML, like lifecycles)::

    keys:
      ops-1:   {hash: "sha256:5f0c…", actor: ops-1, role: centre}
      water-3: {hash: "sha256:9b1e…", actor: water-3, role: department, department: water}

``gridwhistle keys add`` makes a key, prints it once and appends its hash. A file of the old
form, where each entry's name was the key itself, is refused with the one command that
converts it in place (``gridwhistle keys migrate FILE``; the keys keep working). Why one
unsalted SHA-256 suffices here, and not a password hash: ``docs/decisions.md``.

Callers send the key in the ``X-API-Key`` header (Open311's ``POST requests`` takes it as the
``api_key`` form field, as GeoReport v2 specifies). What a key's role may do is decided by the
lifecycle's role rules; a key with a ``department`` may only read and act on tickets whose
``department`` field is that department. A :class:`KeyRing` keeps only the hashes in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.http.problems import Problem
from engine import (
    Actor,
    ConfigurationError,
    DefinitionError,
    InvalidArgument,
    Lifecycle,
    Ticket,
    UnknownDefinition,
    load_definition,
    load_yaml_model,
)
from engine import Problem as DefinitionProblem
from engine.definition.loader import read_text
from engine.definition.schema import LifecycleSpec
from engine.handoffs import held_by

__all__ = ["ApiKey", "KeyNotValid", "KeyRing", "add_api_key", "check_key_for", "check_keys",
           "hash_key", "key_holders", "load_api_keys", "migrate_api_keys", "new_key",
           "served_departments", "with_work_orders"]

HASH_PREFIX = "sha256:"
KEY_PREFIX = "gwk_"

ENGINE_ROLE = "system"
"""The engine's own role (deadlines, escalations, periodic tickets): never a key's."""
DEPARTMENT_ROLE = "department"
"""The role whose keys act for one department: such a key must name it."""
ORGANISATION_ROLE = "outside_org"
"""The bundled role of outside organisations (转办): such a key must name its organisation."""


class KeyNotValid(ConfigurationError):
    """API keys the served lifecycles cannot give a meaning to.

    A role they do not declare, a department or an organisation they do not declare, a
    hand-off role without its organisation.

    Raised when the app is built (``create_app``, ``gridwhistle serve``) and by
    ``gridwhistle keys add --lifecycle``, never per request.

    Attributes:
        problems: one line per key at fault, naming the key (never the key itself) and
            saying what to change.
    """

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("API keys that cannot be served (fix the keys file, or make the "
                         "key again with gridwhistle keys add): " + "; ".join(self.problems))


class ApiKey(BaseModel):
    """What a key may act as.

    Attributes:
        actor: the actor id written to history.
        role: a role of the lifecycle.
        department: for department keys, the department they act for.
        organisation: for an outside organisation's key (issue 12), the organisation it
            acts for: it sees and acts on only the tickets that organisation holds now.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    actor: str = Field(min_length=1, max_length=128)
    role: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    department: str | None = Field(default=None, min_length=1, max_length=200)
    organisation: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _scoped(self) -> ApiKey:
        """A key never acts as the engine; a department's (organisation's) key names it.

        Without its department a ``department`` key would see and act on every department's
        tickets (issue: the fresh-user audit), so it is refused where it is made.
        """
        if self.role == ENGINE_ROLE:
            raise ValueError(
                f"role {ENGINE_ROLE!r} is the engine's own (it fires deadlines and "
                "escalations); no API key may act in it — give the key the role of the "
                "person or office that holds it (centre, department, ...)")
        if self.role == DEPARTMENT_ROLE and self.department is None:
            raise ValueError(
                f"a key in role {DEPARTMENT_ROLE!r} must name its department (department: "
                "water; gridwhistle keys add --department water): without it the key would "
                "see and act on every department's tickets")
        if self.role == ORGANISATION_ROLE and self.organisation is None:
            raise ValueError(
                f"a key in role {ORGANISATION_ROLE!r} must name its organisation "
                "(organisation: metro_company; gridwhistle keys add --organisation "
                "metro_company): without it the key would see and act on every ticket")
        return self

    def as_actor(self) -> Actor:
        """The engine :class:`~engine.Actor` of this key."""
        return Actor(self.actor, self.role)


class _HashedKey(ApiKey):
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")

    def grant(self) -> ApiKey:
        return ApiKey(actor=self.actor, role=self.role, department=self.department,
                      organisation=self.organisation)


class _KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keys: dict[str, _HashedKey] = Field(default_factory=dict)


class _PlainKeyFile(BaseModel):
    """The keys file before issue 11: ``keys: {<the key>: {actor, role, department?}}``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    keys: dict[str, ApiKey]


def hash_key(key: str) -> str:
    """``sha256:<hex>`` of a key (UTF-8)."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    """A new random key: ``gwk_`` and 43 URL-safe characters (256 bits from ``secrets``)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The keys a server accepts, held as their hashes only.

    Args:
        keys: plain key → :class:`ApiKey` (for tests and host apps that keep keys elsewhere);
            each key is hashed at once and not kept.

    Use :func:`load_api_keys` for a keys file.
    """

    def __init__(self, keys: Mapping[str, ApiKey] | None = None):
        self._by_hash: dict[str, ApiKey] = {hash_key(k): g for k, g in (keys or {}).items()}
        self._labels: dict[str, str] = {h: f"the key of actor {g.actor!r}"
                                        for h, g in self._by_hash.items()}

    @classmethod
    def from_hashes(cls, hashed: Mapping[str, ApiKey],
                    labels: Mapping[str, str] | None = None) -> KeyRing:
        """A ring from ``sha256:<hex>`` hashes → grants (what a keys file holds).

        ``labels``: hash → how errors name the key (``key 'water-3' in keys.yaml``).
        """
        ring = cls()
        ring._by_hash = dict(hashed)
        ring._labels = {h: (labels or {}).get(h) or f"the key of actor {g.actor!r}"
                        for h, g in hashed.items()}
        return ring

    def __len__(self) -> int:
        return len(self._by_hash)

    def grants(self) -> list[tuple[str, ApiKey]]:
        """``(label, grant)`` of every key: how errors name it (never the key), what it may do."""
        return [(self._labels[h], g) for h, g in self._by_hash.items()]

    def find(self, presented: str | None) -> ApiKey | None:
        """The key's grant, or None when it is unknown or missing.

        The presented key is hashed and the hash looked up: what is compared is a digest an
        attacker cannot steer, so the lookup's timing tells nothing about stored keys.
        """
        if not presented:
            return None
        return self._by_hash.get(hash_key(presented))

    def require(self, presented: str | None) -> ApiKey:
        """The key's grant.

        Raises:
            Problem: 401 when the key is missing or unknown.
        """
        grant = self.find(presented)
        if grant is None:
            raise Problem(401, "unauthorized",
                          "send a valid API key in the X-API-Key header")
        return grant


def _first_entry_line(text: str) -> int:
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        if line.startswith((" ", "\t")) and line.strip() and not line.strip().startswith("#"):
            return i
    return 1


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _keys_file(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Problems of the keys file are said of a keys file (``kind="keys"``), not a lifecycle."""
    @wraps(fn)
    def reading(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except DefinitionError as exc:
            if exc.kind != "definition":
                raise
            raise DefinitionError(exc.problems, kind="keys") from None
    return reading


@_keys_file
def load_api_keys(path: str | Path) -> KeyRing:
    """Read a keys file (format in this module's docstring).

    Raises:
        DefinitionError: the file is not valid (file:line: field problems); a file of plain
            keys (the old form) is refused with the command that converts it.
        FileNotReadable: it is missing, a directory or cannot be read; a ConfigurationError
            whose message names the file (and for a missing one the command that makes
            it), and an OSError as before.
    """
    text = _read_keys_file(path)  # UTF-8 (a byte-order mark allowed), else a clear error
    try:
        spec = load_yaml_model(text, _KeyFile, file=str(path))
    except DefinitionError as exc:
        try:
            load_yaml_model(text, _PlainKeyFile, file=str(path))
        except DefinitionError:
            raise exc from None
        raise DefinitionError([DefinitionProblem(
            str(path), _first_entry_line(text), "keys",
            "this keys file holds the keys themselves (the form before hashed keys); run "
            f"`gridwhistle keys migrate {path}` once to replace each key by its SHA-256 "
            "hash — the keys keep working (docs/http.md#api-keys)")]) from None
    hashes = [e.hash for e in spec.keys.values()]
    dup = sorted({h for h in hashes if hashes.count(h) > 1})
    if dup:
        raise DefinitionError([DefinitionProblem(
            str(path), _first_entry_line(text), "keys",
            f"two entries have the same hash {dup[0][:19]}…: one key, two holders; remove one")])
    return KeyRing.from_hashes({e.hash: e.grant() for e in spec.keys.values()},
                               {e.hash: f"key {n!r} in {path}" for n, e in spec.keys.items()})


def _read_keys_file(path: str | Path) -> str:
    """The text of a keys file (FileNotReadable, DefinitionError: see load_api_keys)."""
    return read_text(Path(path), what="keys file",
                     make=f"make one with `gridwhistle keys add {path} --actor ID --role ROLE`")


def served_departments(lifecycles: Sequence[LifecycleSpec]) -> set[str] | None:
    """The departments a ``department:`` of a key may name for these lifecycles.

    Those declared under ``departments`` (and the ``choices`` of a ``department`` field); None
    when any department is meaningful: a lifecycle with a free ``department`` field (no
    choices) that declares no departments, unless it is another lifecycle's work-order
    lifecycle (``routing.work_orders``), whose ``department`` is its parent's, one of the
    parent's declared departments.
    """
    children = {spec.routing.work_orders for spec in lifecycles if spec.routing is not None}
    declared: set[str] = set()
    free = False
    for spec in lifecycles:
        declared |= set(spec.departments)
        field = spec.fields.get("department")
        if field is None:
            continue
        if field.choices is not None:
            declared |= {str(c) for c in field.choices}
        elif not spec.departments and spec.name not in children:
            free = True
    return None if free else declared


def with_work_orders(lifecycles: Sequence[LifecycleSpec],
                     load: Callable[[str], LifecycleSpec]) -> list[LifecycleSpec]:
    """The lifecycles and the work-order lifecycles their routing names (``work_order``).

    A key acts on work orders as much as on tickets (a department key accepts and finishes
    its work order), so the roles of the work-order lifecycle are roles a key may hold. One
    that ``load`` does not know (:class:`~engine.UnknownDefinition`: not deployed, not
    bundled) is left out: dispatching would fail on it anyway.
    """
    specs = list(lifecycles)
    names = {spec.name for spec in specs}
    for spec in list(specs):
        child = spec.routing.work_orders if spec.routing is not None else None
        if child is None or child in names:
            continue
        try:
            specs.append(load(child))
        except UnknownDefinition:
            continue
        names.add(child)
    return specs


def check_keys(ring: KeyRing, lifecycles: Sequence[LifecycleSpec], *,
               load: Callable[[str], LifecycleSpec] | None = None) -> None:
    """Refuse keys the served lifecycles cannot give a meaning to (at start, not per request).

    Each key's role must be one the lifecycles (or their work-order lifecycles) declare, and
    never ``system``, the engine's own; a key in a role that answers or returns hand-offs
    (``outside_org`` in the bundled grid_incident) must name an organisation, and a named
    organisation must be one the lifecycles declare; a ``department`` key must name its
    department (:class:`ApiKey`), one the lifecycles declare
    (:func:`served_departments`: a misspelt department would start and see no ticket).

    Args:
        ring: the keys.
        lifecycles: the served lifecycles (``Lifecycle.spec`` or ``Definition.spec``).
        load: how to get a work-order lifecycle that ``lifecycles`` name in their routing
            but do not include (:func:`with_work_orders`); None: only those given count.

    Raises:
        KeyNotValid: every key that does not fit, each named (never the key itself).
    """
    given = [spec.name for spec in lifecycles]
    if load is not None:
        lifecycles = with_work_orders(lifecycles, load)
    roles = {r for spec in lifecycles for r in spec.roles} - {ENGINE_ROLE}
    orgs = {o for spec in lifecycles for o in spec.organisations}
    departments = served_departments(lifecycles)
    org_roles = {ORGANISATION_ROLE} & roles
    for spec in lifecycles:
        h = spec.handoff
        if h is None:
            continue
        centre = (set(spec.centre_roles) if spec.centre_roles is not None
                  else {"centre"} & set(spec.roles))
        hands = set(h.answer) | set(h.give_back)
        org_roles |= {r for t in spec.transitions if t.trigger in hands
                      for r in t.roles} - centre - {ENGINE_ROLE}
    served = ", ".join(given)
    extra = [spec.name for spec in lifecycles if spec.name not in given]
    if extra:
        served += f" (work orders: {', '.join(extra)})"
    problems = []
    for label, grant in ring.grants():
        if grant.role not in roles:
            problems.append(
                f"{label}: role {grant.role!r} is not a role of the served lifecycle(s) "
                f"{served}; use one of {', '.join(sorted(roles))}")
        elif grant.role in org_roles and grant.organisation is None:
            problems.append(
                f"{label}: role {grant.role!r} answers hand-offs for an outside "
                f"organisation; name it (organisation: one of "
                f"{', '.join(sorted(orgs)) or '(none declared)'}), or it would see every "
                "ticket")
        if grant.organisation is not None and grant.organisation not in orgs:
            problems.append(
                f"{label}: organisation {grant.organisation!r} is not declared by the served "
                f"lifecycle(s) {served}; declared: {', '.join(sorted(orgs)) or '(none)'} — "
                "correct the key's organisation:, or declare it under organisations: in the "
                "lifecycle")
        if (grant.department is not None and departments is not None
                and grant.department not in departments):
            problems.append(
                f"{label}: department {grant.department!r} is not declared by the served "
                f"lifecycle(s) {served}, so the key would see no ticket; declared: "
                f"{', '.join(sorted(departments)) or '(none)'} — correct the key's "
                "department:, or declare it under departments: in the lifecycle")
    if problems:
        raise KeyNotValid(problems)


def check_key_for(grant: ApiKey, lifecycles: Sequence[str | Path]) -> None:
    """:func:`check_keys` for one new key against lifecycles by bundled name or YAML path.

    Their work-order lifecycles count too (by bundled name, unless one of ``lifecycles``).

    Raises:
        KeyNotValid: the key does not fit them.
        UnknownDefinition, DefinitionError: a lifecycle cannot be loaded.
    """
    specs = [load_definition(item).spec for item in lifecycles]
    ring = KeyRing.from_hashes({"new": grant}, {"new": f"the new key of actor {grant.actor!r}"})
    check_keys(ring, specs, load=lambda name: load_definition(name).spec)


@_keys_file
def key_holders(path: str | Path) -> list[tuple[str, ApiKey, str]]:
    """``(name, grant, hash)`` of every entry of a keys file, in file order.

    Raises:
        DefinitionError, FileNotReadable: as :func:`load_api_keys`.
    """
    load_api_keys(path)
    spec = load_yaml_model(_read_keys_file(path), _KeyFile, file=str(path))
    return [(n, e.grant(), e.hash) for n, e in spec.keys.items()]


def _entry(name: str, hashed: str, grant: ApiKey) -> str:
    parts = [f"hash: {json.dumps(hashed)}", f"actor: {json.dumps(grant.actor)}",
             f"role: {grant.role}"]
    if grant.department is not None:
        parts.append(f"department: {json.dumps(grant.department)}")
    if grant.organisation is not None:
        parts.append(f"organisation: {json.dumps(grant.organisation)}")
    return f"  {json.dumps(name, ensure_ascii=False)}: {{{', '.join(parts)}}}\n"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@_keys_file
def add_api_key(path: str | Path, name: str, grant: ApiKey) -> str:
    """Make a new key for ``grant``, store its hash in the keys file under ``name``.

    The file is created if missing. Existing entries and comments are kept.

    Returns:
        The new key: show it to its holder now, it is not stored anywhere.

    Raises:
        DefinitionError: the file is invalid (or of the old form), or ``name`` is taken.
        FileNotReadable: the file exists but cannot be read (also an OSError).
        InvalidArgument: ``name`` is not 1-64 letters, digits and ``. _ @ -`` (also a
            ValueError).
        OSError: the file cannot be written.
    """
    if not _NAME.match(name):
        raise InvalidArgument("name", f"{name!r}: a key's name is 1 to 64 letters, digits "
                                      "and . _ @ - (e.g. the actor id)")
    target = Path(path)
    key = new_key()
    line = _entry(name, hash_key(key), grant)
    if not target.exists():
        _write(target, "# API keys: hashes only (gridwhistle keys add)\nkeys:\n" + line)
        return key
    text = _read_keys_file(target)
    load_api_keys(target)  # valid, and of the hashed form
    spec = load_yaml_model(text, _KeyFile, file=str(target))
    if name in spec.keys:
        raise DefinitionError([DefinitionProblem(
            str(target), _first_entry_line(text), f"keys.{name}",
            f"a key named {name!r} exists; choose another name or remove that entry")])
    if re.search(r"^keys:[ \t]*(#.*)?$", text, flags=re.M):  # block style: append a line
        _write(target, text + ("" if text.endswith("\n") else "\n") + line)
    else:
        entries = "".join(_entry(n, e.hash, e.grant()) for n, e in spec.keys.items())
        _write(target, "# API keys: hashes only (gridwhistle keys add)\nkeys:\n" + entries
               + line)
    return key


@_keys_file
def migrate_api_keys(path: str | Path) -> int:
    """Rewrite a keys file of plain keys (the old form) with their hashes; keys keep working.

    Each entry is named after its actor (``-2``, ``-3``… when an actor holds several keys).

    Returns:
        How many keys were hashed (0: the file was already hashed).

    Raises:
        DefinitionError: the file is valid in neither form.
        FileNotReadable: as :func:`load_api_keys`.
        OSError: the file cannot be written.
    """
    target = Path(path)
    text = _read_keys_file(target)
    try:
        load_yaml_model(text, _KeyFile, file=str(target))
        return 0
    except DefinitionError:
        pass
    plain = load_yaml_model(text, _PlainKeyFile, file=str(target))
    names: set[str] = set()
    lines = []
    for key, grant in plain.keys.items():
        base = re.sub(r"[^A-Za-z0-9._@-]", "-", grant.actor)[:60] or "key"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.add(name)
        lines.append(_entry(name, hash_key(key), grant))
    _write(target, "# API keys: hashes only (migrated by gridwhistle keys migrate)\nkeys:\n"
           + "".join(lines))
    return len(lines)


def check_scope(grant: ApiKey, ticket: Ticket, lifecycle: Lifecycle | None = None) -> None:
    """Refuse a key acting on a ticket it has no access to.

    A department key may act on its department's tickets only; an organisation's key on the
    tickets that organisation holds now.

    Args:
        grant: the key's grant.
        ticket: the ticket.
        lifecycle: its compiled lifecycle (needed for an organisation's key: which states
            hold it; without it such a key is refused).

    Raises:
        Problem: 403 ``wrong-department`` or ``not-held``.
    """
    if grant.organisation is not None and (
            lifecycle is None or held_by(lifecycle, ticket) != grant.organisation):
        raise Problem(403, "not-held",
                      f"this key acts for organisation {grant.organisation!r}, which does not "
                      f"hold ticket {ticket.id!r} now",
                      ticket_id=ticket.id, organisation=grant.organisation)
    if grant.department is not None and ticket.fields.get("department") != grant.department:
        raise Problem(403, "wrong-department",
                      f"this key acts for department {grant.department!r}; ticket "
                      f"{ticket.id!r} is not handled by it",
                      ticket_id=ticket.id, department=grant.department)
