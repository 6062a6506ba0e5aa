"""The definition loading pipeline: safe YAML → strict schema → graph checks → frozen model.

Use :func:`load_definition` (by bundled name or path) or :func:`parse_definition` (text).
Problems are reported stage by stage, each stage complete: every parse and schema problem of a
file at once in one :class:`~engine.errors.DefinitionError`; once the file is well-formed,
every graph problem (names that do not resolve, unreachable or trap states, ...) at once.
Graph checks need a well-formed model, so they do not run on a file with schema problems.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.definition.checks import run_checks
from engine.definition.limits import SECTION_LIMITS, DefinitionLimits, how_to_raise
from engine.definition.schema import LifecycleSpec
from engine.definition.yaml_source import ParsedDocument, parse_yaml
from engine.errors import (
    DefinitionError,
    FileNotReadable,
    InvalidArgumentType,
    Problem,
    UnknownDefinition,
)

__all__ = [
    "Definition",
    "bundled_names",
    "bundled_workflows_dir",
    "load_definition",
    "load_yaml_model",
    "parse_definition",
    "read_text",
    "validate_document",
]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Definition:
    """A validated lifecycle definition, frozen.

    Attributes:
        spec: the validated model.
        digest: SHA-256 of the source text (hex); identifies this version.
        source: the YAML text it came from.
        file: where it came from (path or ``<string>``).
    """

    spec: LifecycleSpec
    digest: str
    source: str
    file: str

    @property
    def name(self) -> str:
        """The lifecycle's name."""
        return self.spec.name


def bundled_workflows_dir() -> Path:
    """Return the folder of bundled lifecycles.

    Installed from a wheel they live in ``engine/_bundled_workflows``; in a source checkout
    (editable install) they are the repository's ``workflows/`` folder.
    """
    here = Path(__file__).resolve().parent.parent
    installed = here / "_bundled_workflows"
    return installed if installed.is_dir() else here.parent / "workflows"


def bundled_names() -> list[str]:
    """Names of the bundled lifecycles (file stems of ``workflows/*.yaml``)."""
    return sorted(p.stem for p in bundled_workflows_dir().glob("*.yaml"))


def load_definition(
    name_or_path: str | Path, *, limits: DefinitionLimits | None = None
) -> Definition:
    """Load and validate a lifecycle by bundled name (``grid_incident``) or file path.

    Args:
        name_or_path: a bundled lifecycle's name or a YAML file's path.
        limits: size and complexity bounds (default :meth:`DefinitionLimits.from_env`).

    Raises:
        UnknownDefinition: neither a bundled name nor an existing file.
        DefinitionError: the file has problems (all of them listed), or exceeds a limit.
        FileNotReadable: the file exists but cannot be read (no permission); also an OSError.
        InvalidArgumentType: ``name_or_path`` is neither text nor a path (also a TypeError).
    """
    if not isinstance(name_or_path, str | PurePath):
        raise InvalidArgumentType("name_or_path", "a bundled lifecycle's name or a YAML "
                                  "file's path", name_or_path)
    limits = limits or DefinitionLimits.from_env()
    path = Path(name_or_path)
    if not path.is_file():
        candidate = bundled_workflows_dir() / f"{name_or_path}.yaml"
        if not candidate.is_file():
            raise UnknownDefinition(str(name_or_path), bundled_names())
        path = candidate
    return parse_definition(read_text(path, limits=limits, what="lifecycle file"),
                            file=str(path), limits=limits)


def read_text(path: Path, *, limits: DefinitionLimits | None = None, what: str = "file",
              make: str = "") -> str:
    """Read a definition file as UTF-8 (a byte-order mark is allowed).

    Args:
        path: the file.
        limits: its size is checked against ``max_bytes`` before it is read.
        what: what the file is, for the error (``keys file``).
        make: for a missing file, how to make one (appended to the error).

    Raises:
        DefinitionError: the file is larger than ``max_bytes``, or not UTF-8 text (e.g. saved
            as GBK); says how to fix it.
        FileNotReadable: it is missing, a directory or not readable (also an OSError).
    """
    limits = limits or DefinitionLimits.from_env()
    try:
        return _read_text(path, limits)
    except OSError as exc:
        raise FileNotReadable(what, path, exc, make=make) from exc


def _read_text(path: Path, limits: DefinitionLimits) -> str:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DefinitionError([Problem(
            str(path), 1, "",
            f"the file has {size:,} bytes, more than the limit of {limits.max_bytes:,} "
            f"(max_bytes); split it, or {how_to_raise('max_bytes')}")])
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DefinitionError([Problem(
            str(path), line, "",
            f"the file is not UTF-8 text (byte {raw[exc.start]:#04x} at line {line}); "
            "save it as UTF-8 (in Notepad: Save As → Encoding UTF-8)",
        )]) from None


def parse_definition(
    text: str, file: str = "<string>", *, limits: DefinitionLimits | None = None
) -> Definition:
    """Validate lifecycle YAML text.

    Args:
        text: the YAML source.
        file: the name used in problems.
        limits: size and complexity bounds (default :meth:`DefinitionLimits.from_env`):
            checked before the schema and the graph checks run.

    Raises:
        DefinitionError: listing every problem with file, line and field path.
        InvalidArgumentType: ``text`` is not a str (decode bytes first; also a TypeError).
    """
    if not isinstance(text, str):
        raise InvalidArgumentType("text", "the YAML source as text (str)", text,
                                  hint="decode bytes first, or use load_definition(path)")
    limits = limits or DefinitionLimits.from_env()
    doc = parse_yaml(text, file, limits=limits)
    over = section_problems(doc, limits)
    if over:
        raise DefinitionError([*doc.problems, *over])
    spec = validate_document(doc, LifecycleSpec)
    problems = [doc.problem(path, message) for path, message in run_checks(spec)]
    if problems:
        raise DefinitionError(problems)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Definition(spec=spec, digest=digest, source=text, file=file)


def section_problems(doc: ParsedDocument, limits: DefinitionLimits) -> list[Problem]:
    """Sections of a lifecycle with more entries than ``limits`` allow (one problem each)."""
    out: list[Problem] = []
    for path, limit in SECTION_LIMITS:
        node: Any = doc.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        bound: int = getattr(limits, limit)
        if isinstance(node, dict | list) and len(node) > bound:
            out.append(doc.problem(path, (
                f"{len(node):,} entries, more than the limit of {bound:,} ({limit}); split "
                f"the lifecycle, or {how_to_raise(limit)}")))
    return out


def load_yaml_model(
    text: str, model: type[M], file: str = "<string>", *,
    limits: DefinitionLimits | None = None,
) -> M:
    """Parse YAML text safely and validate it against a strict pydantic ``model``.

    For other definition files (e.g. replay mappings) that want the same guarantees as
    lifecycles: safe loading, duplicate keys rejected, YAML 1.1 surprises kept as text, and
    every problem reported at once with file, line and field path.

    Args:
        text: the YAML source.
        model: the pydantic model to validate against.
        file: the name used in problems.
        limits: size, depth and value-count bounds (default
            :meth:`DefinitionLimits.from_env`).

    Raises:
        DefinitionError: listing every problem.
    """
    return validate_document(parse_yaml(text, file, limits=limits), model)


def validate_document(doc: ParsedDocument, model: type[M]) -> M:
    """Validate a parsed document against a strict pydantic model.

    Parse problems and schema problems are reported together.

    Raises:
        DefinitionError: with every problem located by file, line and field path.
    """
    problems = list(doc.problems)
    if doc.data is None and problems:
        raise DefinitionError(problems)
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the document must be a mapping of keys to values"))
        raise DefinitionError(problems)
    try:
        result = model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_problem_from_pydantic(doc, err, model) for err in exc.errors())
        raise DefinitionError(problems) from None
    if problems:
        raise DefinitionError(problems)
    return result


_BOOLEAN_WORDS = {"yes", "no", "on", "off", "y", "n"}


def _problem_from_pydantic(doc: ParsedDocument, err: Any, model: Any) -> Problem:
    path = _data_path(doc.data, err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(doc.data, path, model)
        message = "unknown field" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    elif kind == "bool_type" and isinstance(value, str) and value.lower() in _BOOLEAN_WORDS:
        message = (f"{value!r} is not a boolean here; write true or false "
                   "(YAML 1.1's yes/no/on/off are read as text)")
    elif kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
    elif kind in ("literal_error", "enum"):
        message = f"{value!r} is not allowed; {err['msg'][0].lower()}{err['msg'][1:]}"
    else:
        message = f"{err['msg']} (got {value!r})" if not isinstance(value, dict | list) \
            else str(err["msg"])
    return doc.problem(path, message)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Follow pydantic's error location through the data, dropping union/validator parts."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not part.startswith(
            ("function-", "[key]", "list[", "dict[", "str", "int", "literal[")
        ):
            path.append(part)  # a missing or unknown key: name it
            node = None
    return tuple(path)


def _allowed_keys(
    data: Any, path: tuple[str | int, ...], root: Any = LifecycleSpec
) -> list[str]:
    """Keys the schema allows at the parent of ``path`` (for 'unknown field' messages)."""
    model: Any = root
    for part in path[:-1]:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            # a dict of models keyed by names: skip the key level
            continue
        model = _inner_model(info.annotation)
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else []


def _inner_model(annotation: Any) -> Any:
    import typing

    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _inner_model(arg) if typing.get_args(arg) else None
        if inner is not None:
            return inner
    return None
