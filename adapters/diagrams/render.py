"""Lifecycle diagrams, drawn from the definition.

States carry their zh/en titles, transitions their trigger titles and roles, deadlines are
notes; optionally one state is highlighted (a ticket's current state).

:func:`mermaid` gives Mermaid ``stateDiagram-v2`` text (GitHub and most Markdown viewers draw
it); :func:`dot` gives Graphviz DOT, which :func:`render_with_graphviz` turns into SVG or PNG
when the ``dot`` program is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from datetime import timedelta

from engine import Definition, GridwhistleError
from engine.definition.schema import DeadlineSpec
from engine.durations import format_duration

__all__ = ["dot", "markdown_page", "mermaid", "render_with_graphviz"]

LANGS = ("both", "zh", "en")


def _title(title: dict[str, str], fallback: str, lang: str) -> str:
    zh, en = title.get("zh"), title.get("en")
    if lang == "zh":
        return zh or en or fallback
    if lang == "en":
        return en or zh or fallback
    parts = [p for p in (zh, en) if p]
    return " / ".join(parts) if parts else fallback


def _clean(text: str) -> str:
    # Mermaid ends a label at ':' or ';' and treats quotes specially.
    return (text.replace('"', "'").replace(":", "：").replace(";", "，")
            .replace("\n", " ").strip())


def _roles(roles: Iterable[str]) -> str:
    return ", ".join(roles)


def _deadline_text(name: str, d: DeadlineSpec, lang: str) -> str:
    when = f"after {_duration(d)}" if d.after is not None else f"at field {d.at_field}"
    scope = f"until {', '.join(d.stop_in or ())}" if d.state is None else "in state"
    return f"{_title(d.title, name, lang)} ({name}) {when}, {scope}, on breach {d.on_breach}"


def _duration(d: DeadlineSpec) -> str:
    after = d.after
    assert after is not None
    if isinstance(after, timedelta):
        return format_duration(after)
    if after.working_days is not None:
        return f"{after.working_days} working days ({after.calendar})"
    assert after.working is not None
    return f"working {format_duration(after.working)} ({after.calendar})"


def mermaid(definition: Definition, *, highlight: str | None = None, lang: str = "both") -> str:
    """Mermaid ``stateDiagram-v2`` text for a lifecycle.

    Args:
        definition: the lifecycle.
        highlight: a state to highlight (e.g. a ticket's current state).
        lang: ``both`` (``zh / en`` titles), ``zh`` or ``en``.

    Raises:
        ValueError: ``highlight`` is not a state of the lifecycle, or ``lang`` is unknown.
    """
    spec = definition.spec
    _check(definition, highlight, lang)
    lines = ["---", f"title: {_clean(_title(spec.title, spec.name, lang))}", "---",
             "stateDiagram-v2"]
    for name, state in spec.states.items():
        lines.append(f'    state "{_clean(_title(state.title, name, lang))}" as {name}')
    lines.append(f"    [*] --> {spec.initial}")
    for t in spec.transitions:
        label = _clean(f"{_title(t.title, t.trigger, lang)} [{_roles(t.roles)}]")
        for source in t.source:
            lines.append(f"    {source} --> {t.dest}: {label}")
    for name, state in spec.states.items():
        if state.final:
            lines.append(f"    {name} --> [*]")
    for name, d in spec.deadlines.items():
        where = d.state or spec.initial
        lines.append(f"    note right of {where}: {_clean(_deadline_text(name, d, lang))}")
    if highlight is not None:
        lines.append("    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px")
        lines.append(f"    class {highlight} current")
    return "\n".join(lines) + "\n"


def dot(definition: Definition, *, highlight: str | None = None, lang: str = "both") -> str:
    """Graphviz DOT text for a lifecycle (same content as :func:`mermaid`, without notes).

    Every identifier is a quoted DOT string, so a state named like a DOT keyword (``node``,
    ``edge``, ``graph``, ``digraph``, ``subgraph``, ``strict``) is an ordinary node.

    Raises:
        ValueError: as :func:`mermaid`.
    """
    spec = definition.spec
    _check(definition, highlight, lang)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph lifecycle {", "  rankdir=LR;",
             f"  label={q(_title(spec.title, spec.name, lang))}; labelloc=t;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="sans-serif"];',
             '  edge [fontname="sans-serif", fontsize=10];',
             '  "__start" [shape=point, label=""];']
    for name, state in spec.states.items():
        attrs = [f"label={q(_title(state.title, name, lang))}"]
        if state.final:
            attrs.append("peripheries=2")
        if name == highlight:
            attrs.append('fillcolor="#ffd54f", color="#e65100", penwidth=3')
        lines.append(f"  {q(name)} [{', '.join(attrs)}];")
    lines.append(f'  "__start" -> {q(spec.initial)};')
    for t in spec.transitions:
        label = f"{_title(t.title, t.trigger, lang)} [{_roles(t.roles)}]"
        for source in t.source:
            lines.append(f"  {q(source)} -> {q(t.dest)} [label={q(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _check(definition: Definition, highlight: str | None, lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    if highlight is not None and highlight not in definition.spec.states:
        raise ValueError(f"{highlight!r} is not a state of {definition.name}")


def render_with_graphviz(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz ``dot -T<fmt>`` (``svg`` or ``png``) on DOT text.

    Raises:
        GridwhistleError: Graphviz is not installed, or it failed.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise GridwhistleError(
            "Graphviz's `dot` program is not installed; install it (apt-get install graphviz, "
            "brew install graphviz) or use --format mermaid or dot")
    done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise GridwhistleError(f"dot failed: {done.stderr.decode('utf-8', 'replace')}")
    return done.stdout


def markdown_page(definition: Definition) -> str:
    """A Markdown page with the lifecycle's Mermaid diagram (what ``docs/diagrams/`` holds)."""
    spec = definition.spec
    return (
        f"# {_title(spec.title, spec.name, 'both')} (`{spec.name}`)\n\n"
        f"Generated from `workflows/{spec.name}.yaml` by `make docs` "
        f"(`gridwhistle diagram {spec.name}`); do not edit by hand.\n\n"
        f"```mermaid\n{mermaid(definition)}```\n"
    )
