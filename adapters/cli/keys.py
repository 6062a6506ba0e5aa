"""``gridwhistle keys``: API keys files of hashes (make a key, convert an old file, list)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.app import (
    HelpGroup,
    app,
    console,
    fail,
    file_error,
    plural,
    problems_text,
)
from engine import DefinitionError, GridwhistleError, bundled_names

keys_app = typer.Typer(help="API keys: make one (printed once, its hash stored), convert an "
                            "old file of plain keys, list holders.", no_args_is_help=True,
                       cls=HelpGroup)
app.add_typer(keys_app, name="keys")

FileArg = Annotated[Path, typer.Argument(help="The keys file (YAML; see docs/http.md).")]


def keys_file_error(exc: GridwhistleError | OSError, file: Path | str) -> str:
    """One message for a keys file that cannot be used: its problems, or why it cannot be read.

    Shared with ``serve --api-keys``.
    """
    if isinstance(exc, DefinitionError):
        return problems_text(exc)
    if isinstance(exc, OSError):
        return file_error(exc, "keys file",
                          make=f"make one with `gridwhistle keys add {file} --actor ID "
                               "--role ROLE`")
    return str(exc)


def _invalid_grant(exc: ValueError) -> str:
    """A rejected ``--actor/--role/--department/--organisation``, one option a clause."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for e in errors():
        loc = e.get("loc") or ()
        option = f"--{loc[0]}: " if loc else ""  # a rule across options: its own sentence
        if e.get("type") == "string_too_short" and (e.get("ctx") or {}).get("min_length") == 1:
            parts.append(f"{option}must not be empty")
        else:
            message = str(e.get("msg", "is not valid")).removeprefix("Value error, ")
            parts.append(f"{option}{message[:1].lower()}{message[1:]}" if loc else message)
    return "; ".join(parts) or str(exc)


@keys_app.command("add")
def add(
    file: FileArg,
    actor: Annotated[str, typer.Option(help="The actor id the key acts as (in history).")],
    role: Annotated[str, typer.Option(
        help="The lifecycle role it acts in (never system, the engine's own; a department "
             "role key needs --department, an outside_org key --organisation).")],
    department: Annotated[str | None, typer.Option(
        help="For a department key: the department it acts for.")] = None,
    name: Annotated[str | None, typer.Option(
        help="The entry's name in the file (default: the actor id).")] = None,
    organisation: Annotated[str | None, typer.Option(
        help="For an outside organisation's key: the organisation it acts for (it sees "
             "only the tickets that organisation holds).")] = None,
    lifecycle: Annotated[list[str] | None, typer.Option(
        help="The lifecycle(s) the key will be served with (bundled name or YAML path, "
             "repeatable): its role must be one of theirs (or of their work orders'), its "
             "department and organisation ones they declare. Default: the bundled "
             "lifecycles. serve checks every key at start too.")] = None,
) -> None:
    """Make a new API key: print it once on stdout and append its SHA-256 hash to FILE.

    The key is not stored anywhere: give it to its holder now. FILE is created (mode 0600)
    if it does not exist.
    """
    try:
        from pydantic import ValidationError

        from adapters.http.auth import ApiKey, KeyNotValid, add_api_key, check_key_for

        try:
            grant = ApiKey(actor=actor, role=role, department=department,
                           organisation=organisation)
        except ValidationError as exc:  # the options, not the file
            fail(_invalid_grant(exc))
            return
        try:
            check_key_for(grant, lifecycle or bundled_names())
        except KeyNotValid as exc:
            fail(str(exc) + ("" if lifecycle else " (checked against the bundled lifecycles; "
                             "give --lifecycle FILE to check against your own)"))
            return
        try:
            key = add_api_key(file, name or actor, grant)
        except ValueError as exc:  # the entry's name: the actor id when --name is not given
            fail(f"{exc}" + ("" if name else "; give the entry one with --name"))
            return
    except OSError as exc:
        fail(f"cannot write keys file {file}: {exc.strerror or exc}")
        return
    except GridwhistleError as exc:
        fail(keys_file_error(exc, file))
        return
    typer.echo(key)
    typer.echo(f"stored its hash in {file} as {name or actor!r}; this is the only time the key "
               "is shown", err=True)


@keys_app.command("migrate")
def migrate(file: FileArg) -> None:
    """Replace the plain keys of an old keys file by their hashes, in place.

    Every key keeps working; the file no longer holds them. Run it once per file.
    """
    try:
        from adapters.http.auth import migrate_api_keys

        count = migrate_api_keys(file)
    except (GridwhistleError, OSError) as exc:
        fail(keys_file_error(exc, file))
        return
    typer.echo(f"{file}: already hashed" if count == 0
               else f"{file}: {plural(count, 'key')} replaced by their SHA-256 hashes")


@keys_app.command("list")
def list_keys(file: FileArg) -> None:
    """List the key holders of FILE (name, actor, role, department, organisation); never a key.

    Printed as written in FILE: a name or actor is data, never Rich markup.
    """
    try:
        from adapters.http.auth import key_holders

        holders = key_holders(file)
    except (GridwhistleError, OSError) as exc:
        fail(keys_file_error(exc, file))
        return
    table = Table("name", "actor", "role", "department", "organisation", "hash")
    for name, grant, hashed in holders:
        table.add_row(name, grant.actor, grant.role, grant.department or "",
                      grant.organisation or "", hashed[:19] + "…")
    console.print(table)
