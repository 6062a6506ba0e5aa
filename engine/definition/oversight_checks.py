"""Name checks of issue 11's ``oversight`` section (extensions, suspension, supervision).

Each check yields ``(path, message)`` like those of :mod:`engine.definition.checks`, which
runs them after its own (see ``ALL_CHECKS`` there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from engine.definition.findings import Finding
from engine.definition.findings import known_names as _known
from engine.definition.schema import LifecycleSpec

__all__ = ["OVERSIGHT_CHECKS"]



def _roles(spec: LifecycleSpec, path: tuple[str | int, ...],
           roles: Iterable[str]) -> Iterator[Finding]:
    for j, role in enumerate(roles):
        if role not in spec.roles:
            yield (*path, j), f"unknown role {role!r}; {_known('roles', spec.roles)}"


def oversight_sound(spec: LifecycleSpec) -> Iterator[Finding]:
    """Oversight names declared roles, deadlines and SLA clocks."""
    o = spec.oversight
    if o is None:
        return
    ext = o.extension
    if ext is not None:
        base: tuple[str | int, ...] = ("oversight", "extension")
        for j, name in enumerate(ext.deadlines):
            if name not in spec.deadlines:
                yield ((*base, "deadlines", j),
                       f"unknown deadline {name!r}; {_known('deadlines', spec.deadlines)}")
        yield from _roles(spec, (*base, "request_roles"), ext.request_roles)
        yield from _roles(spec, (*base, "decide_roles"), ext.decide_roles)
    sus = o.suspension
    if sus is not None:
        base = ("oversight", "suspension")
        yield from _roles(spec, (*base, "roles"), sus.roles)
        yield from _roles(spec, (*base, "resume_roles"), sus.resume_roles)
        for j, name in enumerate(sus.clocks):
            if name not in spec.slas:
                yield ((*base, "clocks", j),
                       f"unknown SLA clock {name!r}; {_known('SLA clocks', spec.slas)}")
        if "system" not in spec.roles:
            yield (base, "a suspension is resumed by the system at its limit: declare the "
                         "role 'system'")
    sup = o.supervision
    if sup is not None:
        yield from _roles(spec, ("oversight", "supervision", "roles"), sup.roles)


OVERSIGHT_CHECKS = (oversight_sound,)
