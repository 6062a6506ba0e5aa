"""``gridwhistle webhooks``: dead letters and their replay, one-off delivery rounds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from adapters.cli.app import HelpGroup, app, console, fail, open_engine, problems_text
from engine import DefinitionError, Engine, GridwhistleError

webhooks_app = typer.Typer(help="Webhook deliveries: list dead letters, replay them.",
                           no_args_is_help=True, cls=HelpGroup)
app.add_typer(webhooks_app, name="webhooks")

DbOption = Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")]


def _open(db: str, *, write: bool = True) -> Engine:
    from engine import SystemClock

    return open_engine(db, events=False, clock=SystemClock(), write=write)


@webhooks_app.command("dead")
def dead(
    db: DbOption = "gridwhistle.sqlite",
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """List dead deliveries (retries used up): event, type, ticket, endpoint, last error."""
    from adapters.webhooks import dead_letters

    engine = _open(db, write=False)
    try:
        rows = dead_letters(engine, endpoint=endpoint)
    finally:
        engine.stop()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("event id", "type", "ticket", "endpoint", "attempts", "last error")
    for r in rows:
        table.add_row(r["event_id"], r["type"], r["ticket_id"], r["endpoint"],
                      str(r["attempts"]), r["last_error"] or "")
    console.print(table)


@webhooks_app.command("replay")
def replay_dead_letters(
    db: DbOption = "gridwhistle.sqlite",
    event: Annotated[str | None, typer.Option(help="Only this event id.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
) -> None:
    """Put dead deliveries back in the queue with fresh attempts (the worker sends them)."""
    from adapters.webhooks import replay_dead

    engine = _open(db)
    try:
        count = replay_dead(engine, event_id=event, endpoint=endpoint)
    finally:
        engine.stop()
    typer.echo(f"{count} dead deliver{'y' if count == 1 else 'ies'} queued again")


@webhooks_app.command("deliver")
def deliver(
    webhook: Annotated[list[str] | None, typer.Option(help="NAME=URL (repeatable).")] = None,
    webhooks: Annotated[str | None, typer.Option(
        help="YAML file of webhook endpoints (see docs/events.md).")] = None,
    db: DbOption = "gridwhistle.sqlite",
) -> None:
    """Run one delivery round now (enqueue new events, send what is due); print outcomes.

    Each ``--webhook NAME=URL`` takes its secret from ``GRIDWHISTLE_WEBHOOK_SECRET_<NAME>``.
    """
    from adapters.cli.serve import allowed_hosts, webhook_endpoints
    from adapters.webhooks import WebhookWorker

    try:
        endpoints = webhook_endpoints(webhook, webhooks)
    except DefinitionError as exc:
        fail(problems_text(exc))
        return
    except (GridwhistleError, OSError) as exc:
        fail(str(exc))
        return
    if not endpoints:
        raise typer.BadParameter("give --webhook NAME=URL or --webhooks FILE")
    engine = _open(db)
    try:
        worker = WebhookWorker(engine, endpoints, allowed_hosts=allowed_hosts(None))
    except GridwhistleError as exc:
        engine.stop()
        fail(str(exc))
        return
    try:
        results = worker.run_once()
    finally:
        worker.stop()
        engine.stop()
    for r in results:
        typer.echo(f"{r.endpoint} {r.event_id} attempt {r.attempt}: {r.outcome}"
                   + (f" ({r.error})" if r.error else ""))


@webhooks_app.command("secret")
def secret() -> None:
    """Print a new signing secret (whsec_ and base64 of 32 random bytes) for an endpoint.

    Put it in the endpoint's ``secret_env`` variable (or ``GRIDWHISTLE_WEBHOOK_SECRET_<NAME>``
    for ``--webhook NAME=URL``) and give it to the receiver, which verifies with any Standard
    Webhooks library.
    """
    from adapters.webhooks import new_secret

    typer.echo(new_secret())
