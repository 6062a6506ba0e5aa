"""``gridwhistle serve``: the HTTP API (with Open311), the deadline scheduler and webhooks."""

from __future__ import annotations

import errno
import gc
import os
import socket
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.cli.app import (
    app,
    creates_database,
    fail,
    file_error,
    open_engine,
    problems_text,
)
from adapters.cli.keys import keys_file_error
from engine import DefinitionError, GridwhistleError, Limits, SystemClock, load_definition
from engine.evidence import BlobStore

if TYPE_CHECKING:
    from adapters.webhooks import Endpoint

ALLOWED_HOSTS_VARIABLE = "GRIDWHISTLE_WEBHOOK_ALLOWED_HOSTS"


class Open311Reads(StrEnum):
    """``--open311-reads``: who may read Open311 (``Open311Privacy.reads``)."""

    public = "public"
    key = "key"


class Open311History(StrEnum):
    """``--open311-history``: what ``extensions=true`` shows without a key."""

    anonymous = "anonymous"
    none = "none"
    full = "full"


class Open311Evidence(StrEnum):
    """``--open311-evidence``: who sees Open311 ``media_url``."""

    key = "key"
    public = "public"
    none = "none"


def webhook_endpoints(webhook: list[str] | None, webhooks: str | None) -> list[Endpoint]:
    """The endpoints of ``--webhook NAME=URL`` options and a ``--webhooks`` file.

    Each ``--webhook`` takes its secret from ``GRIDWHISTLE_WEBHOOK_SECRET_<NAME>``.

    Raises:
        GridwhistleError: an option or the file is wrong, or a secret is missing.
        OSError: the file cannot be read.
    """
    from adapters.webhooks import endpoint_from_option, load_endpoints

    endpoints = [endpoint_from_option(w) for w in webhook or []]
    if webhooks is not None:
        endpoints += load_endpoints(webhooks)
    return endpoints


def allowed_hosts(options: list[str] | None) -> list[str] | None:
    """``--webhook-allow-host`` options, else ``GRIDWHISTLE_WEBHOOK_ALLOWED_HOSTS`` (a, b)."""
    if options:
        return list(options)
    env = os.environ.get(ALLOWED_HOSTS_VARIABLE, "")
    hosts = [h.strip() for h in env.split(",") if h.strip()]
    return hosts or None


def why_not_listen(host: str, port: int) -> str | None:
    """Why ``serve`` could not listen on ``host:port``, or None when it can.

    Found by binding a socket to each address ``host`` resolves to (as uvicorn will, with
    ``SO_REUSEADDR``) and closing it at once: so that a port in use or an address that is
    not this machine's is refused before the database is opened, not by uvicorn afterwards.
    (Another process may still take the port in between; uvicorn then refuses it.)
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return (f"cannot listen on {host}: {exc.strerror}; give an address of this machine "
                "with --host (127.0.0.1, or 0.0.0.0 for every interface)")
    seen: set[tuple[int, object]] = set()
    for family, kind, proto, _, address in infos:
        if (family, address) in seen:
            continue
        seen.add((family, address))
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                where = f"cannot listen on {host}:{port}"
                if exc.errno == errno.EADDRINUSE:
                    return (f"{where}: the port is in use (is Gridwhistle or another server "
                            "already running there?); stop it, or give another --port")
                if exc.errno == errno.EACCES:
                    return (f"{where}: permission denied (ports below 1024 need privileges); "
                            "give a --port from 1024 up")
                if exc.errno == errno.EADDRNOTAVAIL:
                    return (f"{where}: {host} is not an address of this machine; give one "
                            "with --host (127.0.0.1, or 0.0.0.0 for every interface)")
                return f"{where}: {exc.strerror or exc}"
    return None


@app.command()
def serve(
    api_keys: Annotated[str, typer.Option(
        help="YAML file of API key hashes (gridwhistle keys add; see docs/http.md).")],
    db: Annotated[str, typer.Option(
        help="SQLite file or SQLAlchemy URL (a missing SQLite file is created).")
    ] = "gridwhistle.sqlite",
    lifecycle: Annotated[list[str] | None, typer.Option(
        help="Lifecycle(s) to serve, by bundled name or YAML path; the first is the default "
             "and Open311's. Default: grid_incident.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8311,
    webhook: Annotated[list[str] | None, typer.Option(
        help="Deliver events to NAME=URL (repeatable); the signing secret comes from the "
             "environment variable GRIDWHISTLE_WEBHOOK_SECRET_<NAME>.")] = None,
    webhooks: Annotated[str | None, typer.Option(
        help="YAML file of webhook endpoints (url, types, secret; see docs/events.md).")
    ] = None,
    webhook_allow_host: Annotated[list[str] | None, typer.Option(
        help="Only these webhook target hosts (repeatable; *.example.org allowed). Default: "
             f"${ALLOWED_HOSTS_VARIABLE} (comma separated), else any host.")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        min=1, help="Largest request body accepted (bytes).")] = Limits().body_bytes,
    open311_reads: Annotated[Open311Reads, typer.Option(
        help="public (Open311 reads need no key) or key.")] = Open311Reads.public,
    open311_history: Annotated[Open311History, typer.Option(
        help="What extensions=true shows without a key: anonymous (no actor ids, roles or "
             "reasons), none, or full.")] = Open311History.anonymous,
    no_open311: Annotated[bool, typer.Option("--no-open311", help="Do not serve Open311.")
                          ] = False,
    open311_evidence: Annotated[Open311Evidence, typer.Option(
        help="Who sees Open311 media_url (photos): key (a key with access to the ticket), "
             "public, or none.")] = Open311Evidence.key,
    evidence_store: Annotated[str | None, typer.Option(
        help="Where uploaded evidence is stored: a directory or fsspec URL (s3://bucket/x). "
             "Default: <db>.evidence beside a SQLite file.")] = None,
) -> None:
    """Serve the HTTP API and Open311 with uvicorn; fire deadlines and deliver webhooks.

    Stops on Ctrl-C. Exit code 1 when the keys file, a lifecycle, a webhook endpoint, the
    evidence store, the address to listen on or the database is wrong; all but the database
    (and, on a database that exists, the keys against the versions it holds) are checked
    before the database is opened, so a refused start creates no file and deploys nothing.
    """
    try:
        import uvicorn

        from adapters.http import Open311Privacy, create_app, load_api_keys
        from adapters.http.auth import check_keys
        from adapters.webhooks import WebhookWorker, check_endpoints
    except ImportError as exc:
        fail(f"{exc.name} is missing: install the HTTP extra, pip install 'gridwhistle[http]'")
        return

    # the choices are Click's (exit 2 naming the option and its values, before this runs)
    privacy = Open311Privacy(reads=open311_reads.value,
                             history=open311_history.value,
                             evidence=open311_evidence.value)
    try:
        keys = load_api_keys(api_keys)
    except (GridwhistleError, OSError) as exc:
        fail(keys_file_error(exc, api_keys))
        return
    try:
        endpoints = webhook_endpoints(webhook, webhooks)
    except DefinitionError as exc:
        fail(problems_text(exc))
        return
    except OSError as exc:
        fail(file_error(exc, "webhooks file"))
        return
    except GridwhistleError as exc:
        fail(str(exc))
        return
    served = lifecycle or ["grid_incident"]
    hosts = allowed_hosts(webhook_allow_host)
    # Everything that can be checked without the database is checked before it is opened (or
    # created, or its lifecycles deployed): a refused start leaves nothing behind.
    try:
        definitions = [load_definition(name) for name in served]
    except DefinitionError as exc:
        fail(problems_text(exc))
        return
    except GridwhistleError as exc:
        fail(str(exc))
        return
    try:
        check_endpoints(endpoints, hosts)  # names, secrets, URLs, the allowed hosts
        store = BlobStore(evidence_store) if evidence_store is not None else None
        limits = Limits(body_bytes=max_body_bytes)
        if creates_database(db):  # a new file serves exactly these lifecycles
            check_keys(keys, [d.spec for d in definitions],
                       load=lambda name: load_definition(name).spec)
    except GridwhistleError as exc:
        fail(str(exc))
        return
    cannot = why_not_listen(host, port)  # last: the files' faults are told first
    if cannot is not None:
        fail(cannot)
        return
    # An existing database may hold newer versions of the lifecycles served by name:
    # create_app checks the keys against those, before it deploys anything.
    engine = open_engine(db, create=True, clock=SystemClock(), evidence_store=store)
    try:
        worker = (WebhookWorker(engine, endpoints, allowed_hosts=hosts) if endpoints
                  else None)
        application = create_app(engine, api_keys=keys,
                                 lifecycles=served,
                                 open311_api=not no_open311, open311_privacy=privacy,
                                 limits=limits)
    except GridwhistleError as exc:
        engine.stop()
        fail(str(exc))
        return
    engine.start()
    if worker is not None:
        worker.start()
    # What start-up built (compiled lifecycles and statements, the app, the calendars) lives
    # as long as the process: frozen out of the cyclic collector, a full collection no longer
    # walks it — otherwise a 60-90 ms pause of every thread now and then, an API write's
    # worst wait while deadlines fire (docs/performance.md, benchmark 11).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(application, host=host, port=port, log_level="info")
    finally:
        if worker is not None:
            worker.stop()
        engine.stop()
