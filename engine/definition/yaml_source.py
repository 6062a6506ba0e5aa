"""Step 1 of loading a definition: safe YAML parsing that remembers where every node is.

The parser is PyYAML's safe composer with a stricter scalar resolver:

* Only ``true``/``false`` (any case) are booleans. YAML 1.1's ``yes``, ``no``, ``on``, ``off``,
  ``y`` and ``n`` stay the strings the author wrote, so a trigger named ``on`` or a state named
  ``no`` means what it says; a field that wants a boolean rejects them with a clear message.
* ``10:00`` is the string ``"10:00"`` (YAML 1.1 would read 600), ``0755`` is the string
  ``"0755"`` (YAML 1.1: 493), and bare dates stay strings for the schema to parse.
* Integers are plain decimal, floats plain decimal with a point or exponent, nulls ``null``,
  ``~`` or nothing.
* Duplicate keys are problems, not silent overrides. Explicit tags other than the standard
  ones (``!!str``, ``!!int``, ...) are problems: nothing in a definition names Python objects.
* Bounded before it is walked (:class:`~engine.definition.limits.DefinitionLimits`): the
  text's size, how deeply it nests, and how many values it holds with every alias counted as
  the value it stands for. The count runs over the node graph with each node sized once, so an
  alias bomb (nested aliases standing for billions of values) is refused in microseconds, at
  the line of the alias that makes it; aliases that stay within the limit are fine.

The composer is libyaml's (PyYAML's C extension) when it is installed, else PyYAML's own; both
use the resolver above. Every problem is collected; the caller raises them together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from engine.definition.limits import DefinitionLimits, how_to_raise
from engine.errors import Problem

__all__ = ["ParsedDocument", "parse_yaml"]

Path = tuple[str | int, ...]


class _StrictResolver(BaseResolver):
    """YAML 1.2 core-schema-like implicit typing (see module docstring)."""


_StrictResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_StrictResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_StrictResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _StrictLoader(Reader, Scanner, Parser, Composer, SafeConstructor, _StrictResolver):
    """Composer-only loader: we walk the node graph ourselves."""

    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _StrictResolver.__init__(self)


_Loader: Any = _StrictLoader
try:  # libyaml composes ~30 times faster (a 10,000-state lifecycle: 5 s -> 0.2 s)
    from yaml._yaml import CParser

    class _CStrictLoader(CParser, SafeConstructor, _StrictResolver):
        """The same loader on libyaml's scanner, parser and composer."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            _StrictResolver.__init__(self)

    _Loader = _CStrictLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


@dataclass
class ParsedDocument:
    """A parsed YAML document with the line of every node.

    Attributes:
        file: the file name used in problems.
        data: the plain Python value (dicts, lists, str, int, float, bool, None).
        lines: ``{path: line}`` for every node; a path is a tuple of keys and list indexes.
        problems: problems found while parsing (duplicate keys, bad tags, syntax errors).
    """

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """Return the line of the node at ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Path, message: str) -> Problem:
        """Build a :class:`Problem` located at ``path``."""
        return Problem(self.file, self.line_of(path), dotted(path), message)


def dotted(path: Path) -> str:
    """Render a path like ``states.reported.deadlines[0].after``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_yaml(
    text: str, file: str = "<string>", *, limits: DefinitionLimits | None = None
) -> ParsedDocument:
    """Parse one YAML document safely, recording node lines and collecting problems.

    Args:
        text: the YAML source.
        file: the name to use in problems.
        limits: the size, depth and value-count bounds (default
            :meth:`DefinitionLimits.from_env`).

    Returns:
        A :class:`ParsedDocument`; check its ``problems`` before using ``data``. A document
        over a limit has one problem saying which and ``data`` None.
    """
    limits = limits or DefinitionLimits.from_env()
    doc = ParsedDocument(file=file, data=None)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        doc.problems.append(Problem(file, 1, "", (
            f"the file has {size:,} bytes, more than the limit of {limits.max_bytes:,} "
            f"(max_bytes); split it, or {how_to_raise('max_bytes')}")))
        return doc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        detail = " ".join(x for x in (exc.context, exc.problem) if x)
        doc.problems.append(Problem(file, line, "", f"YAML syntax error: {detail}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 0, "", f"YAML error: {exc}"))
        return doc
    finally:
        loader.dispose()
    if node is None:
        doc.problems.append(Problem(file, 1, "", "the file is empty; expected a mapping"))
        return doc
    bound = _bound(node, limits, file)
    if bound is not None:
        doc.problems.append(bound)
        return doc
    doc.data = _walk(node, (), doc, loader, frozenset())
    return doc


def _bound(root: Node, limits: DefinitionLimits, file: str) -> Problem | None:
    """Check depth and written-out size of the node graph without expanding any alias.

    Each distinct node is visited once (its size memoised), so the cost is linear in the
    text's size however many values the aliases stand for. Returns the problem, or None.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    worst: list[tuple[int, int, Path]] = []  # (written-out size, line of use, path of use)

    def size(node: Node, depth: int, path: Path) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            return 1  # a recursive alias: reported by the walk
        if depth > limits.max_depth:
            raise _TooDeep(node.start_mark.line + 1, path)
        on_path.add(key)
        total = 1
        children: list[tuple[Node, int, Path]] = []
        if isinstance(node, MappingNode):
            for k, v in node.value:
                line = k.start_mark.line + 1
                name = k.value if isinstance(k, ScalarNode) else "?"
                children += [(k, line, path), (v, line, (*path, name))]
        elif isinstance(node, SequenceNode):
            # an alias item has no mark of its own (it is the anchored node): use the list's
            children = [(item, node.start_mark.line + 1, (*path, i))
                        for i, item in enumerate(node.value)]
        for child, line, child_path in children:
            seen_before = id(child) in sizes
            n = size(child, depth + 1, child_path)
            if seen_before:  # a second use of an anchored node: an alias
                worst.append((n, line, child_path))
            total += n
        on_path.discard(key)
        sizes[key] = total
        return total

    try:
        total = size(root, 0, ())
    except _TooDeep as deep:
        return Problem(file, deep.line, dotted(deep.path), (
            f"values nest more than {limits.max_depth} levels deep (max_depth); flatten "
            f"them, or {how_to_raise('max_depth')}"))
    if total <= limits.max_yaml_nodes:
        return None
    if worst:
        _, line, path = max(worst, key=lambda w: (w[0], -w[1]))
        return Problem(file, line, dotted(path), (
            f"aliases make the document stand for {_count(total)} values, more than the "
            f"limit of {limits.max_yaml_nodes:,} (max_yaml_nodes); the alias here is the "
            f"largest; write the values out instead of nesting aliases, or "
            f"{how_to_raise('max_yaml_nodes')}"))
    return Problem(file, 1, "", (
        f"the document holds {total:,} values, more than the limit of "
        f"{limits.max_yaml_nodes:,} (max_yaml_nodes); split it, or "
        f"{how_to_raise('max_yaml_nodes')}"))


class _TooDeep(Exception):
    def __init__(self, line: int, path: Path):
        self.line = line
        self.path = path


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"more than 10^{len(str(n)) - 1}"


def _walk(
    node: Node, path: Path, doc: ParsedDocument, loader: _StrictLoader, seen: frozenset[int]
) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if id(node) in seen:
        doc.problems.append(doc.problem(path, "an alias refers to a node that contains it "
                                              "(a recursive alias); write the value out"))
        return None
    seen = seen | {id(node)}
    if isinstance(node, MappingNode):
        if node.tag not in ("tag:yaml.org,2002:map",):
            doc.problems.append(doc.problem(path, f"tag {node.tag!r} is not allowed here"))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                doc.problems.append(
                    Problem(doc.file, key_node.start_mark.line + 1, dotted(path),
                            "mapping keys must be plain names, not lists or mappings")
                )
                continue
            key = key_node.value  # keys are names: always the text the author wrote
            if key == "<<":
                doc.problems.append(
                    Problem(doc.file, key_node.start_mark.line + 1, dotted(path),
                            "merge keys (<<) are not supported; write the keys out")
                )
                continue
            if key in out:
                first = doc.lines.get((*path, key), 0)
                doc.problems.append(
                    Problem(doc.file, key_node.start_mark.line + 1, dotted((*path, key)),
                            f"duplicate key {key!r} (first defined on line {first}); "
                            "keep one of them")
                )
                continue
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*path, key), doc, loader, seen)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            doc.problems.append(doc.problem(path, f"tag {node.tag!r} is not allowed here"))
        return [_walk(item, (*path, i), doc, loader, seen) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    if node.tag not in _STANDARD_TAGS:
        doc.problems.append(
            doc.problem(path, f"tag {node.tag!r} is not allowed; definitions hold plain values")
        )
        return node.value
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        doc.problems.append(doc.problem(path, f"cannot read value {node.value!r}: {exc}"))
        return node.value
