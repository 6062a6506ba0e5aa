"""Open311 GeoReport v2 on the same app, under ``/open311/v2``.

Source: the GeoReport v2 specification (wiki.open311.org/GeoReport_v2). Implemented calls:
``GET services.{fmt}``, ``GET services/{service_code}.{fmt}``, ``POST requests.{fmt}``,
``GET requests.{fmt}``, ``GET requests/{service_request_id}.{fmt}``; ``fmt`` is ``json`` or
``xml``. Errors are the spec's list of ``{code, description}`` (``<errors><error>`` in XML):
400 bad input, 403 bad or missing ``api_key`` on POST, 404 unknown service or request.

How Gridwhistle maps onto it (see ``docs/http.md``):

* services: the lifecycle's ``categories`` (else the ``choices`` of its ``category`` field);
  ``service_code`` is the category name;
* a request is a ticket of the lifecycle: ``service_code`` its ``category`` field, ``status``
  ``closed`` in a final state and ``open`` otherwise, ``status_notes`` the state's title,
  ``agency_responsible`` its ``department`` field, ``address`` its ``area`` field,
  ``expected_datetime`` the due time of the pending timer of the lifecycle's
  ``resolution_deadline``;
* ``POST requests`` reports a ticket as the ``api_key``'s actor and role; its
  ``attribute[NAME]`` values are read as the declared field's type and checked by the engine
  like JSON field values, field permissions included (a field the key's role may not set
  is a 403: ``attribute[department]`` from a grid worker's key); ``channel`` is recorded as
  ``open311`` when the role may set it; an ``Idempotency-Key`` header makes a retried POST
  answer the first request again.

Reads follow :class:`Open311Privacy`: by default they need no key but show no actor ids,
roles or reasons (``extensions=true`` notes say what happened, not who did it); with a key
(``api_key`` parameter or ``X-API-Key`` header) the notes are complete. XML output replaces
characters XML 1.0 cannot carry (control characters other than tab, CR and LF) with U+FFFD,
so it is always well-formed.
"""

from __future__ import annotations

import math
import mimetypes
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from adapters.http.auth import ApiKey, KeyRing, check_scope
from adapters.http.forms import FormError, read_form
from adapters.http.problems import Problem
from engine import (
    CommandRefused,
    Engine,
    EvidenceRejected,
    FieldNotAllowed,
    GridwhistleError,
    InvalidArgument,
    Lifecycle,
    Ticket,
    find_tickets,
)
from engine.definition.schema import FieldSpec
from engine.evidence import Uploads, kind_of
from engine.validation import idempotency_key_problem, ticket_id_problem

__all__ = ["Open311Error", "Open311Privacy", "router"]

MAX_RANGE = timedelta(days=90)
"""GeoReport v2: a start_date/end_date range may not span more than 90 days."""

router = APIRouter(prefix="/open311/v2", tags=["open311"])


@dataclass(frozen=True)
class Open311Privacy:
    """What Open311 reads show (GeoReport v2 reads are public by design).

    Attributes:
        reads: ``public`` (default): reads need no key; ``key``: every read needs a valid
            key (``api_key`` parameter or ``X-API-Key`` header), else 403.
        history: what ``extensions=true`` shows to a caller without a key: ``anonymous``
            (default) the notes without actor ids, roles and reasons; ``none`` no notes;
            ``full`` the notes with them. A key always sees full notes (a department key:
            of its own department's tickets).
        evidence: who sees a request's ``media_url`` (its photo) and may fetch it from
            ``/open311/v2/media/{id}``: ``key`` (default) clients with a key that has access
            to the ticket; ``public`` every client, with or without a key; ``none`` nobody
            through Open311.

    Raises:
        InvalidArgument: a value that is not one of those (also a ValueError, as before).
    """

    reads: Literal["public", "key"] = "public"
    history: Literal["anonymous", "none", "full"] = "anonymous"
    evidence: Literal["public", "key", "none"] = "key"

    def __post_init__(self) -> None:
        if self.reads not in ("public", "key"):
            raise InvalidArgument("reads", f"Open311Privacy.reads is public or key, not "
                                           f"{self.reads!r}")
        if self.history not in ("anonymous", "none", "full"):
            raise InvalidArgument("history", "Open311Privacy.history is anonymous, none or "
                                             f"full, not {self.history!r}")
        if self.evidence not in ("public", "key", "none"):
            raise InvalidArgument("evidence", "Open311Privacy.evidence is public, key or "
                                              f"none, not {self.evidence!r}")


class Open311Error(GridwhistleError):
    """An error rendered in GeoReport v2's format (its own handler, not problem+json).

    ``headers``: response headers to send with it (a 415's ``Accept-Post``).
    """

    def __init__(self, status: int, description: str, fmt: str = "json", *,
                 headers: Mapping[str, str] | None = None):
        self.status = status
        self.description = description
        self.fmt = fmt
        self.headers = dict(headers or {})
        super().__init__(description)


def error_response(exc: Open311Error, headers: Mapping[str, str] | None = None) -> Response:
    """The spec's error list, in JSON or XML (``headers``: e.g. a 405's ``Allow``)."""
    items = [{"code": exc.status, "description": exc.description}]
    response = _render(items, exc.fmt, "errors", "error", status=exc.status)
    response.headers.update(headers or {})
    return response


def _fmt(value: str) -> str:
    if value not in ("json", "xml"):
        raise Open311Error(404, f"unknown format {value!r}; use .json or .xml")
    return value


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry, even escaped (section 2.2, production [2] Char)."""


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return xml_text(str(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _xml(parent: ET.Element, key: str, value: Any) -> None:
    node = ET.SubElement(parent, key)
    if isinstance(value, dict):
        for k, v in value.items():
            _xml(node, k, v)
    elif isinstance(value, list):
        singular = key[:-1] if key.endswith("s") else "item"
        for v in value:
            _xml(node, singular, v)
    else:
        node.text = _text(value)


def _render(items: list[dict[str, Any]], fmt: str, root: str, item: str,
            status: int = 200) -> Response:
    if fmt == "json":
        return JSONResponse(_jsonable(items), status_code=status)
    top = ET.Element(root)
    for i in items:
        node = ET.SubElement(top, item)
        for key, value in i.items():
            _xml(node, key, value)
    body = ET.tostring(top, encoding="unicode", xml_declaration=True)
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def _engine(request: Request) -> tuple[Engine, Lifecycle]:
    engine: Engine = request.app.state.engine
    return engine, engine.lifecycle(request.app.state.lifecycles[0])


def _title(title: dict[str, str], fallback: str) -> str:
    return title.get("en") or title.get("zh") or fallback


def services_of(lc: Lifecycle) -> list[dict[str, Any]]:
    """The lifecycle's Open311 services (categories, else the category field's choices)."""
    spec = lc.spec
    if spec.categories:
        return [{"service_code": code, "service_name": _title(c.title, code),
                 "description": c.description, "metadata": False, "type": "realtime",
                 "keywords": "", "group": c.group}
                for code, c in spec.categories.items()]
    field = spec.fields.get("category")
    return [{"service_code": choice, "service_name": choice, "description": "",
             "metadata": False, "type": "realtime", "keywords": "", "group": ""}
            for choice in (field.choices or [] if field else [])]


def _service_name(lc: Lifecycle, code: str | None) -> str | None:
    if code is None:
        return None
    category = lc.spec.categories.get(code)
    return _title(category.title, code) if category else code


def request_of(
    engine: Engine, lc: Lifecycle, ticket: Ticket, *, extensions: bool = False,
    history: Literal["anonymous", "none", "full"] = "full", media_base: str | None = None,
) -> dict[str, Any]:
    """A ticket as a GeoReport v2 service request.

    With ``extensions`` (the ``extensions=true`` parameter several cities support), also
    ``extended_attributes`` (state, level, overdue) and ``notes``: the ticket's history as
    ``{datetime, type, summary, description}``, oldest first. ``history`` says what the notes
    show (see :class:`Open311Privacy`): ``full`` with actor, role and reason, ``anonymous``
    without them, ``none`` no notes. ``media_base``: the URL prefix of
    ``/open311/v2/media/{id}`` when the caller may see the ticket's evidence (its
    ``media_url`` is then the report's first photo, or a reference's URL); None: no media.
    """
    state = lc.spec.states.get(ticket.state)
    expected = None
    if lc.spec.resolution_deadline is not None:
        for timer in engine.timers(ticket.id, status="pending"):
            if timer.name == lc.spec.resolution_deadline:
                expected = timer.due_at
    code = ticket.fields.get("category")
    out = {
        "service_request_id": ticket.id,
        "status": "closed" if ticket.state in lc.final_states else "open",
        "status_notes": _title(state.title, ticket.state) if state else ticket.state,
        "service_name": _service_name(lc, code),
        "service_code": code,
        "description": ticket.fields.get("description"),
        "agency_responsible": ticket.fields.get("department"),
        "service_notice": None,
        "requested_datetime": ticket.created_at,
        "updated_datetime": ticket.updated_at,
        "expected_datetime": expected,
        "address": ticket.fields.get("address") or ticket.fields.get("area"),
        "address_id": None,
        "zipcode": None,
        "lat": ticket.fields.get("lat"),
        "long": ticket.fields.get("long"),
        "media_url": _media_url(engine, ticket, media_base),
    }
    if extensions:
        out["extended_attributes"] = {"state": ticket.state, "level": ticket.level,
                                      "overdue": ticket.overdue,
                                      "grid": ticket.fields.get("area")}
        if history != "none":
            out["notes"] = [
                {"datetime": h.at, "type": h.kind, "summary": h.trigger,
                 "description": f"{h.from_state or '-'} -> {h.to_state} ({h.to_level})" + (
                     f" by {h.actor} ({h.role})" + (f": {h.reason}" if h.reason else "")
                     if history == "full" else "")}
                for h in engine.history(ticket.id)
            ]
    return out


def _media_url(engine: Engine, ticket: Ticket, base: str | None) -> str | None:
    """The request's photo: its report's first photo (else any), stored or referenced."""
    if base is None:
        return None
    found = engine.attachments(ticket.id)
    photos = [a for a in found if a.kind == "photo"] or found
    if not photos:
        return None
    first = min(photos, key=lambda a: (a.seq != 1, a.seq, a.id))
    if first.sha256 is not None:
        return f"{base}/{first.id}"
    return first.ref if first.ref and first.ref.startswith(("http://", "https://")) else None


def _media_base(request: Request, grant: ApiKey | None, ticket: Ticket,
                engine: Engine) -> str | None:
    """The media URL prefix when this caller may see the ticket's evidence, else None."""
    privacy: Open311Privacy = request.app.state.open311_privacy
    if not _may_see_evidence(privacy, grant, ticket, engine):
        return None
    return str(request.base_url).rstrip("/") + "/open311/v2/media"


def _may_see_evidence(privacy: Open311Privacy, grant: ApiKey | None, ticket: Ticket,
                      engine: Engine) -> bool:
    if privacy.evidence == "none":
        return False
    if privacy.evidence == "public":
        return True
    if grant is None:
        return False
    try:
        check_scope(grant, ticket, engine.lifecycle_of(ticket))
    except Problem:
        return False
    return True


def _reader(request: Request, api_key: str | None, fmt: str) -> ApiKey | None:
    """The key of an Open311 read (``api_key`` or ``X-API-Key``), enforcing ``reads: key``."""
    keys: KeyRing = request.app.state.keys
    privacy: Open311Privacy = request.app.state.open311_privacy
    presented = api_key or request.headers.get("X-API-Key")
    grant = keys.find(presented) if presented else None
    if presented and grant is None:
        raise Open311Error(403, "api_key is unknown", fmt)
    if privacy.reads == "key" and grant is None:
        raise Open311Error(403, "this server's Open311 reads need an api_key", fmt)
    return grant


def _history_for(request: Request, grant: ApiKey | None,
                 ticket: Ticket) -> Literal["anonymous", "none", "full"]:
    """What ``extensions=true`` shows this caller of ``ticket``.

    Full notes for a key with access to the ticket (``check_scope``: a department key its own
    department's, an organisation's key the ones it holds now); else the privacy setting.
    """
    privacy: Open311Privacy = request.app.state.open311_privacy
    if grant is not None:
        try:
            check_scope(grant, ticket, request.app.state.engine.lifecycle_of(ticket))
        except Problem:
            return privacy.history
        return "full"
    return privacy.history


def _requests(request: Request, engine: Engine, lc: Lifecycle, tickets: Sequence[Ticket],
              grant: ApiKey | None, extensions: bool) -> list[dict[str, Any]]:
    return [request_of(engine, lc, t, extensions=extensions,
                       history=_history_for(request, grant, t),
                       media_base=_media_base(request, grant, t, engine)) for t in tickets]


def _split(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _instant(value: str | None, name: str, fmt: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime such as "
                                f"2024-05-01T00:00:00Z, got {value!r}", fmt) from None
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name} must carry a time zone (Z or +08:00)", fmt)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise Open311Error(400, f"{name} is out of range", fmt) from None


@router.get("/services.{fmt}", summary="Open311: list services")
def list_services(fmt: str, request: Request, jurisdiction_id: str | None = None,
                  api_key: str | None = None) -> Response:
    """The lifecycle's categories as GeoReport v2 services."""
    fmt = _fmt(fmt)
    _, lc = _engine(request)
    _reader(request, api_key, fmt)
    return _render(services_of(lc), fmt, "services", "service")


@router.get("/services/{service_code}.{fmt}", summary="Open311: service definition")
def service_definition(service_code: str, fmt: str, request: Request,
                       jurisdiction_id: str | None = None,
                       api_key: str | None = None) -> Response:
    """A service's definition (Gridwhistle services have no extra attributes)."""
    fmt = _fmt(fmt)
    _, lc = _engine(request)
    _reader(request, api_key, fmt)
    if service_code not in {s["service_code"] for s in services_of(lc)}:
        raise Open311Error(404, f"no service {service_code!r}", fmt)
    if fmt == "json":
        return JSONResponse({"service_code": service_code, "attributes": []})
    top = ET.Element("service_definition")
    ET.SubElement(top, "service_code").text = xml_text(service_code)
    ET.SubElement(top, "attributes")
    return Response(ET.tostring(top, encoding="unicode", xml_declaration=True),
                    media_type="text/xml; charset=utf-8")


@router.post("/requests.{fmt}", summary="Open311: create a service request")
async def create_request(fmt: str, request: Request) -> Response:
    """Report a ticket from a form-encoded GeoReport v2 request (``api_key`` required).

    Form fields: ``api_key``, ``service_code``, a location (``lat`` and ``long``,
    ``address_string`` or ``address_id``), optional ``description``, ``media_url`` and
    ``attribute[NAME]`` (set ticket field NAME when the lifecycle declares it). The form may
    be multipart with the photo itself as the file part ``media``.

    Evidence: a ``media`` file is uploaded (checked like ``POST /uploads``) and attached to
    the report; a ``media_url`` naming this server's upload (``.../uploads/<sha256>``) attaches
    that upload; any other ``media_url`` is kept as a reference (not fetched).
    """
    fmt = _fmt(fmt)
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        problem = idempotency_key_problem(key, request.app.state.limits)
        if problem is not None:
            raise Open311Error(400, f"Idempotency-Key {problem}", fmt)
    try:
        # urlencoded bodies as UTF-8 (WHATWG), not Latin-1; JSON or XML is a 415, before
        # the api_key check (an empty form) would blame the key
        form = await read_form(request)
    except FormError as exc:
        accept = {"Accept-Post": ", ".join(exc.accepted)} if exc.accepted else None
        raise Open311Error(exc.status, exc.detail, fmt, headers=accept) from None
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    keys: KeyRing = request.app.state.keys
    grant = keys.find(values.get("api_key"))
    engine, lc = _engine(request)
    if grant is None or grant.role not in lc.spec.report.roles:
        raise Open311Error(403, "api_key is missing, unknown or may not report requests", fmt)
    code = values.get("service_code", "").strip()
    known = {s["service_code"] for s in services_of(lc)}
    if not code:
        raise Open311Error(400, "service_code is required", fmt)
    if code not in known:  # also when the lifecycle offers no service at all
        raise Open311Error(400, f"service_code {code!r} is not a service; see services.{fmt}"
                           + ("" if known else " (this server offers none: the lifecycle "
                              "declares no categories and its category field no choices)"),
                           fmt)
    has_point = values.get("lat", "").strip() and values.get("long", "").strip()
    if not (has_point or values.get("address_string", "").strip()
            or values.get("address_id", "").strip()):
        raise Open311Error(400, "a location is required: lat and long, address_string or "
                                "address_id", fmt)
    fields = _report_fields(lc, values, code, fmt, grant.role)
    media = form.get("media")
    sent = (media.content_type, await media.read()) if (
        media is not None and not isinstance(media, str)) else None
    # a refused report removes the photo it stored (Engine.uploads)
    with engine.uploads(actor=grant.as_actor(), lifecycle=lc.name) as uploads:
        evidence = _media(uploads, sent, values.get("media_url", "").strip(), fmt)
        try:
            ticket = engine.report(lc.name, fields, actor=grant.as_actor(),
                                   idempotency_key=key, evidence=evidence)
        except FieldNotAllowed as exc:  # issue 11: e.g. attribute[department] by a grid worker
            raise Open311Error(403, str(exc), fmt) from None
        except CommandRefused as exc:
            raise Open311Error(400, str(exc), fmt) from None
    return _render([{"service_request_id": ticket.id, "service_notice": None,
                     "account_id": None}], fmt, "service_requests", "request")


_UPLOAD_URL = re.compile(r"/uploads/([0-9a-f]{64})/?$")


def _media(uploads: Uploads, media: tuple[str | None, bytes] | None, media_url: str,
           fmt: str) -> list[dict[str, Any]]:
    """The report's evidence from a ``media`` file part and/or ``media_url``.

    ``media``: the part's declared type and bytes, stored in ``uploads`` (the request's).
    """
    out: list[dict[str, Any]] = []
    if media is not None:
        try:
            blob = uploads.upload(media[1], media_type=media[0])
        except EvidenceRejected as exc:
            raise Open311Error(400, f"media: {exc}", fmt) from None
        out.append({"upload": blob.sha256})
    if media_url:
        mine = _UPLOAD_URL.search(media_url)
        if mine:
            out.append({"upload": mine.group(1)})
        elif media_url.startswith(("http://", "https://")) and len(media_url) <= 2000:
            guessed = mimetypes.guess_type(media_url.split("?", 1)[0])[0]
            out.append({"ref": media_url, "kind": kind_of(guessed) if guessed else "photo",
                        **({"media_type": guessed} if guessed else {})})
        else:
            raise Open311Error(400, "media_url must be an http(s) URL of at most 2000 "
                                    "characters", fmt)
    return out


STANDARD_FIELDS = ("description", "address_id", "email", "device_id", "account_id",
                   "first_name", "last_name", "phone")
"""GeoReport v2 form fields kept in the ticket field of the same name (when declared)."""

_HANDLED = {"api_key", "service_code", "jurisdiction_id", "address_string", "lat", "long",
            "media_url", "media"}


def _report_fields(lc: Lifecycle, values: dict[str, str], code: str,
                   fmt: str, role: str) -> dict[str, Any]:
    """The report's fields from the form; nothing the form says is dropped silently.

    ``address_string`` goes to the ``address`` field (else ``area``), ``lat``/``long`` to
    ``number`` fields of those names, ``description`` and GeoReport's other standard fields
    (:data:`STANDARD_FIELDS`) to string fields of their own names. A non-empty value the
    lifecycle has no field for — and any form key GeoReport v2 does not define — is a 400
    naming it, and nothing is created. ``channel`` is recorded as ``open311`` when the key's
    role may set it (field permissions); ``attribute[NAME]`` fields are checked by the engine
    like any other (a role that may not set one is refused: 403).
    """
    declared = lc.spec.fields
    fields: dict[str, Any] = {"category": code}
    unheld: list[str] = []
    address = "address" if "address" in declared else "area"
    plain = {"address_string": address, **{f: f for f in STANDARD_FIELDS}}
    for form_key, field in plain.items():
        value = values.get(form_key, "").strip()
        if not value:
            continue
        if field in declared and declared[field].type == "string":
            fields[field] = value
        else:
            unheld.append(form_key)
    media_url = values.get("media_url", "").strip()
    if media_url and "media_url" in declared and declared["media_url"].type == "string":
        fields["media_url"] = media_url  # also attached as evidence (see _media)
    for coordinate in ("lat", "long"):
        value = values.get(coordinate, "").strip()
        if not value:
            continue
        if coordinate in declared and declared[coordinate].type == "number":
            fields[coordinate] = _typed(declared[coordinate], value, coordinate, fmt)
        else:
            unheld.append(coordinate)
    if unheld:
        known = ", ".join(sorted(declared)) or "(none)"
        raise Open311Error(400, f"lifecycle {lc.name!r} has no field to keep "
                                f"{', '.join(unheld)} (declared: {known}); send the request "
                                "without them, or declare the fields in the lifecycle "
                                "(docs/http.md#open311-georeport-v2)", fmt)
    unknown = sorted(k for k in values if k not in _HANDLED and k not in plain
                     and not (k.startswith("attribute[") and k.endswith("]")))
    if unknown:
        raise Open311Error(400, f"{', '.join(unknown)}: not a GeoReport v2 field; a field of "
                                "the lifecycle goes in attribute[NAME]", fmt)
    if "channel" in declared and lc.permissions.may_set("channel", "report", role):
        fields["channel"] = "open311"
    for key, value in values.items():
        if key.startswith("attribute[") and key.endswith("]"):
            name = key[len("attribute["):-1]
            spec = declared.get(name)
            if spec is None:
                known = ", ".join(sorted(declared)) or "(none)"
                raise Open311Error(400, f"{key}: the lifecycle declares no field {name!r}; "
                                        f"declared: {known}", fmt)
            fields[name] = _typed(spec, value, key, fmt)
    return fields


def _typed(spec: FieldSpec, text: str, name: str, fmt: str) -> Any:
    """A form value read as the field's type; the engine then checks it like JSON values."""
    kind = spec.type
    if kind in ("string", "datetime"):
        return text  # a datetime field takes ISO 8601 text, as in JSON
    value = text.strip()
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise Open311Error(400, f"{name} must be true or false, got {_short(text)}", fmt)
        return value.lower() == "true"
    try:
        number: int | float = int(value) if kind == "integer" else float(value)
    except ValueError:
        what = "a whole number" if kind == "integer" else "a number"
        raise Open311Error(400, f"{name} must be {what}, got {_short(text)}", fmt) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise Open311Error(400, f"{name} must be a finite number, got {_short(text)}", fmt)
    return number


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40] + "...")


@router.get("/requests.{fmt}", summary="Open311: query service requests")
def list_requests(
    fmt: str,
    request: Request,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    jurisdiction_id: str | None = None,
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    extensions: bool = False,
    api_key: str | None = None,
) -> Response:
    """Service requests by GeoReport v2 filters, newest update first.

    ``service_request_id`` (comma separated) overrides the other filters. Without dates the
    range is the last 90 days; with one date it is the 90 days from (or up to) it; a range
    longer than 90 days is refused. ``page``, ``page_size`` and ``extensions`` (history as
    ``notes``) are extensions; ``api_key`` shows complete notes (see :class:`Open311Privacy`).
    """
    fmt = _fmt(fmt)
    engine, lc = _engine(request)
    grant = _reader(request, api_key, fmt)
    ids = _split(service_request_id)
    if ids is not None:
        ids = [i for i in ids if ticket_id_problem(i) is None]  # others cannot exist
        found = find_tickets(engine, lifecycle=lc.name, ids=ids, limit=500)
        return _render(_requests(request, engine, lc, found.items, grant, extensions), fmt,
                       "service_requests", "request")
    start = _instant(start_date, "start_date", fmt)
    end = _instant(end_date, "end_date", fmt)
    try:
        if start is None and end is None:
            end = engine.clock.now()
            start = end - MAX_RANGE
        elif start is None:
            assert end is not None
            start = end - MAX_RANGE
        elif end is None:
            end = start + MAX_RANGE
    except OverflowError:
        raise Open311Error(400, "start_date or end_date is out of range", fmt) from None
    if end - start > MAX_RANGE:
        raise Open311Error(400, "start_date and end_date may not be more than 90 days apart",
                           fmt)
    states = _states(lc, _split(status), fmt)
    codes = _split(service_code)
    found = find_tickets(engine, lifecycle=lc.name, states=states, created_from=start,
                         created_to=end, field_values={"category": codes} if codes else None,
                         limit=page_size, offset=(page - 1) * page_size)
    return _render(_requests(request, engine, lc, found.items, grant, extensions), fmt,
                   "service_requests", "request")


def _states(lc: Lifecycle, status: Sequence[str] | None, fmt: str) -> list[str] | None:
    if status is None:
        return None
    unknown = set(status) - {"open", "closed"}
    if unknown:
        raise Open311Error(400, f"status must be open or closed, got {sorted(unknown)}", fmt)
    out = []
    if "open" in status:
        out += [s for s in lc.spec.states if s not in lc.final_states]
    if "closed" in status:
        out += sorted(lc.final_states)
    return out


@router.get("/media/{attachment_id}", summary="Open311: a request's photo")
def get_media(attachment_id: int, request: Request, api_key: str | None = None) -> Response:
    """The bytes of a request's stored photo (its ``media_url``), per the privacy setting.

    ``evidence: public``: any client; ``key`` (default): a key with access to the ticket
    (``api_key`` or ``X-API-Key``); ``none``: nobody.
    """
    from adapters.http.evidence import evidence_response

    engine, lc = _engine(request)
    grant = _reader(request, api_key, "json")
    ticket_id = engine.attachment_ticket(attachment_id)
    found = (find_tickets(engine, lifecycle=lc.name, ids=[ticket_id], limit=1)
             if ticket_id is not None else None)
    if found is None or not found.items:
        raise Open311Error(404, f"no media {attachment_id}", "json")
    privacy: Open311Privacy = request.app.state.open311_privacy
    if not _may_see_evidence(privacy, grant, found.items[0], engine):
        raise Open311Error(403, "this request's media needs an api_key with access to it",
                           "json")
    try:
        return evidence_response(engine, found.items[0].id, attachment_id)
    except Problem:
        raise Open311Error(404, f"no media {attachment_id}", "json") from None


@router.get("/requests/{service_request_id:path}.{fmt}",
            summary="Open311: one service request")
def get_request(service_request_id: str, fmt: str, request: Request,
                jurisdiction_id: str | None = None, extensions: bool = False,
                api_key: str | None = None) -> Response:
    """One service request, as a list of one (as the spec shows).

    The id may hold ``/`` (a work order of the Chicago replay: ``requests/14-1/lead.json``).
    """
    fmt = _fmt(fmt)
    engine, lc = _engine(request)
    grant = _reader(request, api_key, fmt)
    found = (find_tickets(engine, lifecycle=lc.name, ids=[service_request_id], limit=1)
             if ticket_id_problem(service_request_id) is None else None)
    if found is None or not found.items:
        raise Open311Error(404, f"no service request {service_request_id!r}", fmt)
    return _render(_requests(request, engine, lc, found.items, grant, extensions), fmt,
                   "service_requests", "request")
