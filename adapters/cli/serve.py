"""``gridwhistle serve``: the HTTP API (with Open311), the deadline scheduler and webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.app import app, fail
from engine import Database, Engine, GridwhistleError


def parse_webhook(spec: str) -> tuple[str, str]:
    """``NAME=URL`` → ``(name, url)``.

    Raises:
        typer.BadParameter: not of that form.
    """
    name, sep, url = spec.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{spec!r}: write NAME=http://host/path",
                                 param_hint="--webhook")
    return name, url


@app.command()
def serve(
    api_keys: Annotated[str, typer.Option(
        help="YAML file of API keys (see docs/http.md).")],
    db: Annotated[str, typer.Option(help="SQLite file or SQLAlchemy URL.")] = "gridwhistle.sqlite",
    lifecycle: Annotated[list[str] | None, typer.Option(
        help="Lifecycle(s) to serve; the first is the default and Open311's. "
             "Default: grid_incident.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8311,
    webhook: Annotated[list[str] | None, typer.Option(
        help="Deliver events to NAME=URL (repeatable).")] = None,
    webhooks: Annotated[str | None, typer.Option(
        help="YAML file of webhook endpoints (url, types, secret; see docs/events.md).")
    ] = None,
    no_open311: Annotated[bool, typer.Option("--no-open311", help="Do not serve Open311.")
                          ] = False,
) -> None:
    """Serve the HTTP API and Open311 with uvicorn; fire deadlines and deliver webhooks.

    Stops on Ctrl-C. Exit code 1 when the keys file or a lifecycle is invalid.
    """
    try:
        import uvicorn

        from adapters.http import create_app, load_api_keys
        from adapters.webhooks import Endpoint, WebhookWorker, load_endpoints
    except ImportError as exc:
        fail(f"{exc.name} is missing: install the HTTP extra, pip install 'gridwhistle[http]'")
        return

    endpoints = [Endpoint(*parse_webhook(w)) for w in webhook or []]
    try:
        if webhooks is not None:
            endpoints += load_endpoints(webhooks)
        keys = load_api_keys(api_keys)
        engine = Engine(Database(db))
        application = create_app(engine, api_keys=keys, lifecycles=lifecycle or
                                 ["grid_incident"], open311_api=not no_open311)
    except (GridwhistleError, OSError) as exc:
        fail(str(exc))
        return
    worker = WebhookWorker(engine, endpoints) if endpoints else None
    engine.start()
    if worker is not None:
        worker.start()
    try:
        uvicorn.run(application, host=host, port=port, log_level="info")
    finally:
        if worker is not None:
            worker.stop()
        engine.stop()
