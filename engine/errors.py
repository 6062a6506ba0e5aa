"""Every error Gridwhistle raises, rooted in :class:`GridwhistleError`.

The tree::

    GridwhistleError                 anything Gridwhistle raises on purpose
    ├── DefinitionError              a lifecycle, mapping, keys or webhooks file is wrong
    │                                (raised when loading); .problems lists every Problem
    │                                (file, line, field path), .kind says which file it is
    ├── UnknownDefinition            no bundled lifecycle or file by that name
    ├── CommandRefused               a command was refused; the ticket, its history and its
    │   │                            timers are exactly as they were
    │   ├── TicketNotFound           no ticket with that id
    │   ├── TicketExists             report with an id that is already taken
    │   ├── TriggerNotAllowed        the current state has no such transition
    │   │   └── UnknownTrigger       the lifecycle (the ticket's version) declares no such
    │   │                            trigger at all
    │   ├── RoleNotAllowed           the state has the transition, but not for this role
    │   ├── GuardRejected            a guard said no
    │   ├── InvalidFields            ticket fields do not match the lifecycle's field declarations
    │   ├── TopLevelReached          escalation asked for at the top of the whistle ladder
    │   ├── HostCallbackFailed       a guard, action or listener of the host app raised
    │   ├── CommandInsideCallback    a host guard or action issued a command to the engine
    │   ├── IdempotencyKeyReused     an idempotency key came back with a different command
    │   ├── MigrationRefused         a ticket cannot move to another lifecycle version
    │   ├── OutsideCalendar          the command needs a day outside a business calendar's
    │   │                            validity (valid_from / valid_until)
    │   ├── NoRouting                the lifecycle declares no routing table (departments)
    │   ├── UnknownDepartment        a department that the lifecycle does not declare
    │   ├── BounceNeedsApproval      the first receiver bounces without the centre's approval
    │   ├── BounceLimitReached       the ticket was bounced as often as the routing allows
    │   ├── BounceBudgetExceeded     the department held the work order too long to bounce it
    │   ├── NotADuplicate            a merge of tickets that are not the same problem
    │   ├── WorkOrdersOpen           resolve on a routed ticket whose open work orders do
    │   │                            not meet its resolution rule yet
    │   ├── EvidenceMissing          the trigger needs evidence the command does not carry
    │   ├── EvidenceInvalid          an attachment of the command is malformed or unknown
    │   ├── CallbackLinkInvalid      a call-back link that is unknown, used or expired
    │   ├── UnknownOrganisation      a hand-off to an organisation the lifecycle lacks
    │   ├── PatrolNotOnRound         a finding linked to a patrol that is not on its round
    │   ├── OversightRefused         an extension, suspension or supervision notice the
    │   │                            lifecycle's oversight rules do not allow (issue 11)
    │   ├── FieldNotAllowed          the command sets fields its role may not set with its
    │   │                            trigger (field_permissions; issue 11)
    │   └── NotTheHandler            the ticket is at a handler-only ladder level and the
    │                                role is not its handler (issue 11)
    ├── EvidenceRejected             an uploaded file is too large, of a media type not
    │                                accepted, or its content is not what it says it is
    │                                (from Python also: not a file — a str — or unreadable)
    ├── ConcurrencyConflict          another command changed the ticket first; reload and retry
    ├── InvalidArgument              a call was given a value it cannot take (a naive or past
    │   │                            instant, a negative count, an unknown choice); also a
    │   │                            ValueError; .argument names the parameter
    │   ├── InvalidArgumentType      a call was given a value of the wrong type (None for an
    │   │                            Engine, text for bytes); also a TypeError
    │   └── UnknownValue             a listing's filter names a state, level, lifecycle or
    │                                timer status nothing declares; .known lists the ones
    │                                that are
    └── ConfigurationError           the engine is set up wrongly (unknown callback name, bad URL)
        ├── VirtualClockRequired     run_until on an engine whose clock is not a VirtualClock;
        │                            also a TypeError
        └── FileNotReadable          a file it was pointed at is missing, a directory or not
                                     readable (a keys file, a lifecycle); also an OSError

Every error carries the data a caller branches on as attributes, and its message says what to
do next.

The adapters' own errors are rooted here too (``except GridwhistleError`` catches everything
Gridwhistle raises on purpose): ``adapters.http`` ``Problem`` (an HTTP problem of the adapter),
``Open311Error``, ``FormError``, ``BodyTooLarge`` and ``KeyNotValid``, ``adapters.replay``
``DumpError``, ``UndecodableData`` (a data file that is not text in its encoding; for an
Open311 dump ``UndecodableDump``, a ``DumpError`` too), ``MalformedCsv`` (a CSV export the
csv reader cannot read through), ``RepeatedColumn`` (a column the mapping reads appears twice
in the header), ``UnknownEncoding`` and ``WouldEmptyDatabase`` (a replay refuses to empty a
database holding tickets no replay wrote).
``tests/test_error_tree.py`` checks every exception class of ``engine`` and ``adapters``,
with the few internal signals that never leave their module listed there.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "NEW_TICKET",
    "BounceBudgetExceeded",
    "BounceLimitReached",
    "BounceNeedsApproval",
    "CallbackLinkInvalid",
    "CommandRefused",
    "ConcurrencyConflict",
    "ConfigurationError",
    "DefinitionError",
    "EvidenceInvalid",
    "EvidenceMissing",
    "EvidenceRejected",
    "FieldNotAllowed",
    "FileNotReadable",
    "GridwhistleError",
    "GuardRejected",
    "HostCallbackFailed",
    "IdempotencyKeyReused",
    "InvalidArgument",
    "InvalidArgumentType",
    "InvalidFields",
    "MigrationRefused",
    "NoRouting",
    "NotADuplicate",
    "NotTheHandler",
    "OutsideCalendar",
    "OversightRefused",
    "PatrolNotOnRound",
    "Problem",
    "RoleNotAllowed",
    "TicketExists",
    "TicketNotFound",
    "TopLevelReached",
    "TriggerNotAllowed",
    "UnknownDefinition",
    "UnknownDepartment",
    "UnknownOrganisation",
    "UnknownTrigger",
    "UnknownValue",
    "VirtualClockRequired",
    "WorkOrdersOpen",
]


class GridwhistleError(Exception):
    """Root of every error Gridwhistle raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a definition file.

    Attributes:
        file: the file's path as given (or ``<string>`` for text).
        line: 1-based line of the offending node (0 when unknown).
        path: dotted field path inside the document, e.g. ``states.reported.deadline.after``.
        message: what is wrong and what to write instead.
    """

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<document>'}: {self.message}"


_FILE_KINDS = {"definition": "lifecycle", "mapping": "mapping", "keys": "keys",
               "webhooks": "webhooks"}


class DefinitionError(GridwhistleError):
    """A definition file (lifecycle, replay mapping, keys or webhooks file) has problems.

    All problems of a file are collected before raising, so an administrator fixes them in one
    pass. ``str(err)`` lists one ``file:line: path: message`` per line, under a head that
    says what the file is and names it (``2 problems in mapping file my-mapping.yaml; fix
    them and load again:``, ``1 problem in lifecycle file new.yaml; fix it and load again:``).

    Attributes:
        problems: every :class:`Problem` found, in file order.
        kind: what the file is: ``definition`` (a lifecycle, the default), ``mapping`` (a
            replay mapping, as :class:`UnknownDefinition` names them), ``keys`` (an API keys
            file) or ``webhooks`` (a webhooks file).
    """

    def __init__(self, problems: Sequence[Problem], *, kind: str = "definition"):
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line, p.path)))
        self.kind = kind
        count = len(self.problems)
        head = (f"{count} problem{'s' if count != 1 else ''} in {self.what()}; fix "
                f"{'it' if count == 1 else 'them'} and load again:")
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))

    def what(self) -> str:
        """What the file is, and its name when the problems are of one file.

        ``lifecycle file new.yaml``, ``keys file keys.yaml``; a lifecycle read from text or
        from the store names no file (``lifecycle``, ``lifecycle <grid_incident v2>``).
        """
        noun = _FILE_KINDS.get(self.kind, self.kind)
        files = sorted({p.file for p in self.problems})
        if len(files) != 1 or files[0] == "<string>":
            return f"{noun} file" if self.kind != "definition" else noun
        if files[0].startswith("<"):
            return f"{noun} {files[0]}"
        return f"{noun} file {files[0]}"


class UnknownDefinition(GridwhistleError):
    """No definition (lifecycle or replay mapping) is known by that name or path.

    Attributes:
        name: what was asked for.
        known: the names of the bundled definitions of that kind.
        kind: ``lifecycle`` or ``mapping``.
    """

    def __init__(self, name: str, known: Sequence[str], kind: str = "lifecycle"):
        self.name = name
        self.known = tuple(known)
        self.kind = kind
        names = ", ".join(self.known) or "(none)"
        if _looks_like_a_path(name):  # meant as a file: say the file is missing
            super().__init__(f"no such file: {name}; check the path, or give one of the "
                             f"bundled {kind} names: {names}")
        else:
            super().__init__(f"no {kind} named {name!r}: give a path to a YAML file or one of "
                             f"the bundled names: {names}")


def _looks_like_a_path(name: str) -> bool:
    """Whether a definition name is meant as a file: it ends in .yaml/.yml or has a slash."""
    return name.lower().endswith((".yaml", ".yml")) or "/" in name or "\\" in name


class CommandRefused(GridwhistleError):
    """A command was refused. Nothing was changed: ticket, history and timers are as before.

    Attributes:
        ticket_id: the ticket the command was for.
    """

    def __init__(self, ticket_id: str, message: str):
        self.ticket_id = ticket_id
        super().__init__(message)


class TicketNotFound(CommandRefused):
    """No ticket has this id. Check the id, or list tickets with ``gridwhistle tickets``."""

    def __init__(self, ticket_id: str):
        super().__init__(ticket_id, f"ticket {ticket_id!r} does not exist; check the id")


class TicketExists(CommandRefused):
    """A report used a ticket id that already exists; report with a new id or omit it."""

    def __init__(self, ticket_id: str):
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} already exists; report with another id, or omit the id "
            "to have one generated",
        )


class TriggerNotAllowed(CommandRefused):
    """The ticket's current state has no transition for this trigger.

    Attributes:
        ticket_id, state, trigger: the refused command.
        allowed: the triggers the current state does allow (sorted).
    """

    def __init__(self, ticket_id: str, state: str, trigger: str, allowed: Sequence[str],
                 *, message: str | None = None):
        self.state = state
        self.trigger = trigger
        self.allowed = tuple(sorted(allowed))
        choices = ", ".join(self.allowed) if self.allowed else "none (the state is final)"
        super().__init__(
            ticket_id,
            message or f"ticket {ticket_id!r} is in state {state!r}, where trigger "
                       f"{trigger!r} is not allowed; allowed triggers there: {choices}",
        )


class UnknownTrigger(TriggerNotAllowed):
    """The lifecycle (the ticket's own version) declares no transition with this trigger.

    A :class:`TriggerNotAllowed` (no state allows it), told apart because it is a mistake in
    the command (a typo, another lifecycle's trigger), not a matter of the ticket's state.

    Attributes:
        ticket_id, state, trigger, allowed: as :class:`TriggerNotAllowed`.
        known: every trigger the lifecycle version declares (sorted).
    """

    def __init__(self, ticket_id: str, state: str, trigger: str, allowed: Sequence[str],
                 known: Sequence[str]):
        self.known = tuple(sorted(known))
        now = ", ".join(sorted(allowed)) or "none (the state is final)"
        super().__init__(ticket_id, state, trigger, allowed, message=(
            f"the lifecycle of ticket {ticket_id!r} declares no trigger {trigger!r}; check its "
            f"spelling: its triggers are {', '.join(self.known)}; allowed in state "
            f"{state!r} now: {now}"))


class RoleNotAllowed(CommandRefused):
    """The transition exists but this role may not fire it.

    Attributes:
        ticket_id, state, trigger: the refused command.
        role: the role that tried.
        allowed_roles: the roles that may fire this trigger from this state (sorted).
    """

    def __init__(
        self, ticket_id: str, state: str, trigger: str, role: str, allowed_roles: Sequence[str]
    ):
        self.state = state
        self.trigger = trigger
        self.role = role
        self.allowed_roles = tuple(sorted(allowed_roles))
        super().__init__(
            ticket_id,
            f"role {role!r} may not fire {trigger!r} on ticket {ticket_id!r} in state "
            f"{state!r}; roles allowed: {', '.join(self.allowed_roles)}",
        )


class GuardRejected(CommandRefused):
    """Every transition for this trigger had a guard that returned false.

    Attributes:
        ticket_id, state, trigger: the refused command.
        guards: the names of the guards that said no.
    """

    def __init__(self, ticket_id: str, state: str, trigger: str, guards: Sequence[str]):
        self.state = state
        self.trigger = trigger
        self.guards = tuple(guards)
        super().__init__(
            ticket_id,
            f"trigger {trigger!r} on ticket {ticket_id!r} in state {state!r} was refused by "
            f"guard(s) {', '.join(self.guards)}; meet their condition and try again",
        )


NEW_TICKET = "(new)"
"""The ``ticket_id`` of a refused report that was given no id: no ticket was made."""


class InvalidFields(CommandRefused):
    """Ticket fields do not match the lifecycle's ``fields`` declarations.

    Attributes:
        ticket_id: the ticket, the id a report asked for, or ``(new)`` (:data:`NEW_TICKET`)
            for a report given no id: then the message says "the report has invalid
            fields", not an id generated for a ticket that was never made.
        errors: ``{field name: message}``.
    """

    def __init__(self, ticket_id: str, errors: dict[str, str]):
        self.errors = dict(errors)
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
        subject = "the report" if ticket_id == NEW_TICKET else f"ticket {ticket_id!r}"
        super().__init__(ticket_id, f"{subject} has invalid fields: {detail}")


class HostCallbackFailed(CommandRefused):
    """A guard, action or listener registered by the host app raised; nothing was changed.

    The original exception is chained as ``__cause__``.

    Attributes:
        ticket_id, trigger: the command.
        callback: the registered name of the callback that raised.
    """

    def __init__(self, ticket_id: str, trigger: str, callback: str, error: BaseException):
        self.trigger = trigger
        self.callback = callback
        super().__init__(
            ticket_id,
            f"host callback {callback!r} raised {type(error).__name__}: {error} while firing "
            f"{trigger!r} on ticket {ticket_id!r}; nothing was changed",
        )


class CommandInsideCallback(CommandRefused):
    """A host guard or action issued a command to the engine while the engine was running it.

    Guards and actions run inside a command (:class:`~engine.Registry`), before it is
    staged: a command they issue would change the ticket under the one being decided (and
    two commands would claim the same history row). It is refused, nothing of it is
    staged, and the command whose callback issued it fails with
    :class:`HostCallbackFailed`. Issue it once that command has committed instead, e.g. from
    a listener (``Engine.on``), which runs after the commit.

    Attributes:
        ticket_id: the ticket the refused command was for.
        command: what it was (``fire``, ``report``, ...).
    """

    def __init__(self, ticket_id: str, command: str):
        self.command = command
        super().__init__(
            ticket_id,
            f"{command} on ticket {ticket_id!r} was issued from inside a host guard or "
            "action, while the engine was running another command; issue it after that "
            "command has committed (e.g. from a listener, Engine.on), not from the callback")


class OutsideCalendar(CommandRefused):
    """The command needs working time on a day its business calendar is not valid for.

    A calendar's ``valid_from`` / ``valid_until`` are the dates it is known to be right for;
    a deadline, SLA clock or duty-hours check that needs a day outside them refuses the
    command, which changes nothing. Extend the calendar's dates (and check its extra days)
    in the lifecycle file, deploy it, and retry.

    Attributes:
        ticket_id: the ticket the command was for.
        calendar: the calendar's name; ``day``: the local date needed;
        valid_from, valid_until: the calendar's validity (None: unbounded).
    """

    def __init__(self, ticket_id: str, calendar: str, day: date,
                 valid_from: date | None, valid_until: date | None):
        self.calendar = calendar
        self.day = day
        self.valid_from = valid_from
        self.valid_until = valid_until
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r}: the command needs calendar {calendar!r} on {day}, outside "
            f"its validity ({valid_from or 'the beginning'} to {valid_until or 'open end'}); "
            "extend the calendar's valid_from/valid_until in the lifecycle, deploy it and move "
            "the running tickets to it (`gridwhistle migrate --workflow FILE`)",
        )


class ConcurrencyConflict(GridwhistleError):
    """Another command changed the ticket between this command's read and its write.

    Reload the ticket and retry the command.

    Attributes:
        ticket_id: the ticket.
        expected_version: the row version this command read.
        actual_version: the row version found when writing (None if the ticket vanished).
    """

    def __init__(self, ticket_id: str, expected_version: int, actual_version: int | None,
                 *, message: str | None = None):
        self.ticket_id = ticket_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(message or (
            f"ticket {ticket_id!r} changed while this command ran (read version "
            f"{expected_version}, found {actual_version}); reload it and retry"
        ))


class ConfigurationError(GridwhistleError):
    """The engine is set up wrongly (unknown callback name, bad database URL, ...)."""


class InvalidArgument(GridwhistleError, ValueError):
    """A call was given a value it cannot take; nothing was done.

    A naive instant (one without a time zone), an instant before a virtual clock's now, a
    negative duration or count, a page size out of range, a choice that is not one of the
    documented ones. The message says what to give instead. Also a :class:`ValueError`, as
    these calls raised before.

    Attributes:
        argument: the parameter at fault, as the message names it (``until``, ``limit``,
            ``lease_seconds``, ``run_until's instant``).
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        super().__init__(message)


class InvalidArgumentType(InvalidArgument, TypeError):
    """A call was given a value of the wrong type (None for an Engine, text for bytes).

    Nothing was done; the message names the type expected. Also a :class:`TypeError` (and,
    as an :class:`InvalidArgument`, a :class:`ValueError`).

    Attributes:
        argument: the parameter at fault; ``expected``: what it takes, in words;
        ``given``: the type name of the value given.
    """

    def __init__(self, argument: str, expected: str, value: object, *, hint: str = ""):
        self.expected = expected
        self.given = type(value).__name__
        super().__init__(argument, f"{argument} must be {expected}, not {self.given}"
                                   + (f"; {hint}" if hint else ""))


class UnknownValue(InvalidArgument):
    """A filter names a value nothing declares, so it could only ever match nothing.

    A state or level no deployed version of the lifecycle(s) declares (old versions count:
    tickets may still be on them), a lifecycle never deployed in the database, a timer
    status that is not one of the four. Refused rather than answered with an empty list, so
    a typo is not read as "no such tickets". Nothing was read.

    Attributes:
        argument: the filter (``state``, ``level``, ``lifecycle``, ``status``).
        value: what was given.
        known: the values it can take, sorted (empty when nothing is deployed yet).
    """

    def __init__(self, argument: str, value: str, known: Sequence[str], *, among: str = "",
                 hint: str = ""):
        self.value = value
        self.known = tuple(known)
        where = f" {among}" if among else ""
        choices = (f"give one of: {', '.join(self.known)}" if self.known
                   else hint or "there is none to give")
        super().__init__(argument, f"{argument} {value!r} is not one{where}; {choices}")


class VirtualClockRequired(ConfigurationError, TypeError):
    """A call that moves virtual time, on an engine whose clock is not a VirtualClock.

    :meth:`engine.Engine.run_until` (and :class:`engine.testing.Harness`) move a
    :class:`~engine.clock.VirtualClock`; real time cannot be moved. Build the engine with
    ``clock=VirtualClock(start)`` for a test or a replay, or call ``start()`` to have
    deadlines fire in real time. Also a :class:`TypeError`, as ``run_until`` raised before.

    Attributes:
        call: what was called (``run_until``); clock: the type name of the engine's clock.
    """

    def __init__(self, call: str, clock: object):
        self.call = call
        self.clock = type(clock).__name__
        super().__init__(
            f"{call} moves a VirtualClock, and this engine runs on a {self.clock}; build the "
            "engine with Engine(..., clock=VirtualClock(start)) to move time yourself, or call "
            "start() to have deadlines fire in real time (run_due() fires what is due now)")


def _unreadable(what: str, name: str, cause: OSError, make: str) -> str:
    """The words for a file that cannot be read (``make``: how to make a missing one)."""
    if cause.errno == errno.ENOENT:
        return f"no {what} at {name}" + (f"; {make}" if make else "; check the path")
    if cause.errno == errno.EISDIR:
        return f"{name} is a directory, not a {what}; give the file's path"
    if cause.errno in (errno.EACCES, errno.EPERM):
        return f"cannot open {what} {name}: permission denied (check its permissions and owner)"
    return f"cannot open {what} {name}: {cause.strerror or cause}"


class FileNotReadable(ConfigurationError, OSError):
    """A file Gridwhistle was pointed at cannot be read: missing, a directory, not permitted.

    The message names the file and says what to do (for a missing keys file: the command
    that makes one). Also an :class:`OSError` carrying the cause's ``errno``, ``strerror``
    and ``filename``, as these calls raised the bare OSError before; the cause is
    ``__cause__``.

    Attributes:
        what: what the file is (``keys file``, ``lifecycle file``); path: the file as given.
    """

    def __init__(self, what: str, path: object, cause: OSError, *, make: str = ""):
        filename = cause.filename if cause.filename is not None else str(path)
        OSError.__init__(self, cause.errno, cause.strerror, filename)
        self.what = what
        self.path = str(path)
        self.message = _unreadable(what, str(filename), cause, make)

    def __str__(self) -> str:
        return self.message


class TopLevelReached(CommandRefused):
    """An escalation was asked for, but the ticket is already at the lifecycle's top level.

    Attributes:
        ticket_id, level: the ticket and its (top) level.
    """

    def __init__(self, ticket_id: str, level: str):
        self.level = level
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} is already at the top level {level!r}; it cannot be "
            "escalated further — assign it at this level instead",
        )


class IdempotencyKeyReused(CommandRefused):
    """An idempotency key was sent again with a different command.

    A key names one command: retrying it with the same key returns the first result and
    applies nothing; the same key with other content (another trigger, ticket, actor, field
    values...) is refused. Use a new key for a new command.

    Attributes:
        ticket_id: the ticket the key's first command was for.
        key: the idempotency key.
        command: the first command's kind (``report``, ``fire``, ``escalate``).
    """

    def __init__(self, key: str, ticket_id: str, command: str):
        self.key = key
        self.command = command
        super().__init__(
            ticket_id,
            f"idempotency key {key!r} was already used for a different {command!r} command "
            f"on ticket {ticket_id!r}; send a new key for a new command",
        )


class MigrationRefused(CommandRefused):
    """A ticket cannot be moved to the chosen lifecycle version; no ticket was moved.

    Attributes:
        ticket_id: the first ticket that cannot move.
        problems: what stands in the way (its state, level or fields in the new version).
    """

    def __init__(self, ticket_id: str, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} cannot move to the new lifecycle version: "
            f"{'; '.join(self.problems)}; map its state (--map old=new) or fix the lifecycle",
        )


class NoRouting(CommandRefused):
    """A department command on a ticket whose lifecycle has no ``routing`` table.

    Attributes:
        ticket_id, lifecycle: the ticket and its lifecycle's name.
    """

    def __init__(self, ticket_id: str, lifecycle: str):
        self.lifecycle = lifecycle
        super().__init__(
            ticket_id,
            f"lifecycle {lifecycle!r} of ticket {ticket_id!r} declares no routing table; add "
            "`departments:` and `routing:` to it (see docs/yaml-reference.md)",
        )


class UnknownDepartment(CommandRefused):
    """A command named a department the ticket's lifecycle does not declare.

    Attributes:
        ticket_id, department: the command.
        known: the declared departments (sorted).
    """

    def __init__(self, ticket_id: str, department: str, known: Sequence[str]):
        self.department = department
        self.known = tuple(sorted(known))
        super().__init__(
            ticket_id,
            f"unknown department {department!r} on ticket {ticket_id!r}; declared "
            f"departments: {', '.join(self.known) or '(none)'} (name one of them, or "
            "declare the department under `departments:` in a new lifecycle version)",
        )


class WorkOrdersOpen(CommandRefused):
    """A routed ticket was to be resolved while its work orders do not meet its rule.

    A ticket with work orders is resolved when they meet the routing's resolution rule
    (``all``, ``lead`` or ``quorum``): the engine resolves it for the department whose work
    order completes the rule. Anyone else firing the resolving trigger before that — a
    department on the ticket itself, say — is refused, naming the work orders still open.

    What to do: the departments finish their work orders; or the centre withdraws the ones
    no longer needed (fire ``withdraw`` on the work order, or re-decide with
    ``Departments.dispatch``, ``designate_lead`` or ``joint_meeting``), after which the
    ticket may be resolved.

    Attributes:
        ticket_id, trigger: the command refused.
        rule, quorum: the ticket's resolution rule (``quorum``: for ``quorum`` only).
        work_orders: the open work orders (id → ``"department, state"``), in issue order.
    """

    def __init__(self, ticket_id: str, trigger: str, rule: str, quorum: int | None,
                 work_orders: dict[str, str]):
        self.trigger = trigger
        self.rule = rule
        self.quorum = quorum
        self.work_orders = dict(work_orders)
        need = {"all": "every work order done", "lead": "the lead work order done",
                "quorum": f"{quorum or 1} work orders done"}.get(rule, rule)
        listed = ", ".join(f"{wid} ({what})" for wid, what in self.work_orders.items())
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} cannot be resolved with {trigger!r} yet: its resolution "
            f"rule {rule!r} needs {need}, and work orders {listed} are still open; let the "
            "departments finish them (the engine then resolves the ticket), or withdraw "
            "those no longer needed (fire 'withdraw' on the work order, or re-dispatch, "
            "designate a lead or hold a joint meeting) and resolve it then",
        )


class BounceNeedsApproval(CommandRefused):
    """The first department to receive the ticket may not bounce it without the centre.

    The first-receiver duty (首接负责): ask the centre to approve the bounce
    (``Departments.approve_bounce``), then bounce again.

    Attributes:
        ticket_id: the work order; parent_id: its ticket; department: who tried.
    """

    def __init__(self, ticket_id: str, parent_id: str, department: str):
        self.parent_id = parent_id
        self.department = department
        super().__init__(
            ticket_id,
            f"department {department!r} received ticket {parent_id!r} first and may not "
            f"bounce work order {ticket_id!r} without the centre's approval; ask the centre "
            "to approve the bounce, or handle it",
        )


class BounceLimitReached(CommandRefused):
    """The ticket has been bounced as many times as its routing allows.

    Attributes:
        ticket_id: the work order; parent_id: its ticket.
        limit: the routing's ``bounce.limit``; count: bounces so far on the ticket.
    """

    def __init__(self, ticket_id: str, parent_id: str, limit: int, count: int):
        self.parent_id = parent_id
        self.limit = limit
        self.count = count
        super().__init__(
            ticket_id,
            f"ticket {parent_id!r} was bounced {count} time(s), the limit is {limit}: work "
            f"order {ticket_id!r} cannot be bounced; handle it (the fallback department owns "
            "the ticket now)",
        )


class BounceBudgetExceeded(CommandRefused):
    """The department held the work order longer than the bounce time budget allows.

    Attributes:
        ticket_id: the work order; department: who tried.
        received_at: when the work order was issued (aware UTC); budget_seconds: the routing's
        ``bounce.within`` in seconds.
    """

    def __init__(self, ticket_id: str, department: str, received_at: object,
                 budget_seconds: float):
        self.department = department
        self.received_at = received_at
        self.budget_seconds = budget_seconds
        super().__init__(
            ticket_id,
            f"department {department!r} received work order {ticket_id!r} at {received_at} "
            f"and may bounce it only within {budget_seconds / 3600:g} h; handle it, or ask "
            "the centre to designate another lead",
        )


class NotADuplicate(CommandRefused):
    """A merge was asked for two tickets that are not reports of the same problem.

    Attributes:
        ticket_id: the ticket to merge; original_id: the one to merge it into; why: the
        rule that failed (different field value, outside the window, wrong order, ...).
    """

    def __init__(self, ticket_id: str, original_id: str, why: str):
        self.original_id = original_id
        self.why = why
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} cannot be merged into {original_id!r}: {why}",
        )


# -- issue 12: evidence, the call-back, hand-offs, patrols ------------------------------------


class EvidenceMissing(CommandRefused):
    """The trigger needs evidence (for this role) that the command does not carry.

    The lifecycle's ``requirements`` say what each trigger needs; upload the files and send
    the command again with them.

    Attributes:
        ticket_id, trigger, role: the command.
        missing: what is missing, in words (``1 photo tagged 'after'``), one per need.
    """

    def __init__(self, ticket_id: str, trigger: str, role: str, missing: Sequence[str]):
        self.trigger = trigger
        self.role = role
        self.missing = list(missing)
        super().__init__(
            ticket_id,
            f"trigger {trigger!r} by role {role!r} on ticket {ticket_id!r} needs evidence: "
            f"{'; '.join(self.missing)}; upload the file(s) and send the command with them",
        )


class EvidenceInvalid(CommandRefused):
    """An attachment of the command is malformed, unknown or not accepted here.

    Attributes:
        ticket_id: the ticket; index: the attachment's position in the command's list;
        why: what is wrong with it.
    """

    def __init__(self, ticket_id: str, index: int, why: str):
        self.index = index
        self.why = why
        super().__init__(ticket_id, f"ticket {ticket_id!r}: evidence[{index}] {why}")


class EvidenceRejected(GridwhistleError):
    """An uploaded file was refused; nothing was stored.

    Attributes:
        why: ``too_large``, ``media_type`` (not accepted), ``mismatch`` (the declared type
            and the content disagree) or ``unknown_content`` (the content is of no type
            known); from the Python API also ``not_a_file`` (``Engine.upload`` was given
            something that is not a file: text, which could be a path or content — pass
            ``Path(...)`` or bytes) and ``unreadable`` (a path or file object that could
            not be read); ``declared``: the media type given with the file; ``detected``:
            the one its content shows (None: none known); ``size``, ``limit``: in bytes
            (``size`` None when only "more than ``limit``" is known).
    """

    def __init__(self, why: str, message: str, *, declared: str | None = None,
                 detected: str | None = None, size: int | None = None,
                 limit: int | None = None):
        self.why = why
        self.declared = declared
        self.detected = detected
        self.size = size
        self.limit = limit
        super().__init__(message)


class CallbackLinkInvalid(CommandRefused):
    """A call-back link that no ticket has, that was used already, or has expired.

    Attributes:
        ticket_id: the ticket (``(unknown)`` when the token names none); why: ``unknown``,
        ``used``, ``expired`` or ``not_in_callback`` (the ticket left its call-back step).
    """

    def __init__(self, ticket_id: str, why: str):
        self.why = why
        words = {"unknown": "is not a call-back link of any ticket",
                 "used": "was used already (each link answers once)",
                 "expired": "has expired (the call-back's deadline passed)",
                 "not_in_callback": "belongs to a ticket no longer waiting for its call-back"}
        super().__init__(ticket_id, f"this call-back link {words.get(why, why)}; ask the "
                                    "centre for a new one if the problem is still there")


class UnknownOrganisation(CommandRefused):
    """A hand-off names an organisation the lifecycle does not declare.

    Attributes:
        ticket_id: the ticket; organisation: the name given; known: the declared ones.
    """

    def __init__(self, ticket_id: str, organisation: object, known: Sequence[str]):
        self.organisation = organisation
        self.known = list(known)
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r}: {organisation!r} is not an outside organisation of its "
            f"lifecycle; declared: {', '.join(self.known) or '(none)'}",
        )


class PatrolNotOnRound(CommandRefused):
    """A report names a patrol round that does not exist or is not on patrol.

    Attributes:
        ticket_id: the report; patrol_id: the round named; why: what is wrong.
    """

    def __init__(self, ticket_id: str, patrol_id: object, why: str):
        self.patrol_id = patrol_id
        self.why = why
        super().__init__(ticket_id, f"ticket {ticket_id!r}: patrol {patrol_id!r} {why}; "
                                    "report the finding while the round is on patrol")


_OVERSIGHT_WHY = {
    "not_offered": "its lifecycle offers no {what}",
    "deadline_not_extensible": "deadline {deadline!r} is not one the lifecycle lets be extended",
    "deadline_not_running": "deadline {deadline!r} is not running on it now",
    "open_request": "an extension of deadline {deadline!r} is already waiting for the "
                    "centre's decision (request {n}); wait for it",
    "limit_reached": "the limit of {limit} {what}(s) is reached",
    "not_later": "the new due instant must be later than {due} (now or the current due)",
    "too_long": "{what} may last at most {limit}",
    "unknown_request": "it has no {what} request {n}",
    "not_open": "{what} request {n} was decided already ({status})",
    "unknown_cause": "{cause!r} is not a documented cause of suspension; causes: {known}",
    "suspended": "it is suspended (挂起); the centre resumes it first (only a move to a "
                 "final state is allowed meanwhile)",
    "not_suspended": "it is not suspended",
    "ticket_ended": "it is in a final state",
}


class OversightRefused(CommandRefused):
    """A request for more time or a notice that the lifecycle's oversight rules refuse.

    An extension request or decision, a suspension or resumption, or a supervision notice
    (issue 11). Nothing was changed.

    Attributes:
        ticket_id: the ticket; why: ``not_offered``, ``deadline_not_extensible``,
        ``deadline_not_running``, ``open_request``, ``limit_reached``, ``not_later``,
        ``too_long``, ``unknown_request``, ``not_open``, ``unknown_cause``, ``suspended``,
        ``not_suspended`` or ``ticket_ended``; details: what the rule compared (the
        deadline, the limit, the request number, ...), JSON-ready.
    """

    def __init__(self, ticket_id: str, why: str, **details: object):
        self.why = why
        self.details = dict(details)
        template = _OVERSIGHT_WHY.get(why, why)
        try:
            text = template.format(**{"what": "oversight", **self.details})
        except (KeyError, IndexError):
            text = template
        super().__init__(ticket_id, f"ticket {ticket_id!r}: refused, {text}")
# -- issue 11: who may change what --------------------------------------------------------


class FieldNotAllowed(CommandRefused):
    """The command sets ticket fields its role may not set with its trigger.

    The lifecycle's ``field_permissions`` (and its defaults: the fields that drive deadlines
    and the routing field are the centre's) say who may set each field. Send the command
    without those fields; ask the centre to change them — a department that needs more time
    sends an extension request (延期申请) instead of moving its deadline.

    Attributes:
        ticket_id, trigger, role: the command.
        fields: the fields it may not set (sorted).
        allowed_roles: for each of them, the roles that may set it (empty: any role that
            may fire the trigger).
        allowed_triggers: for each of them, the triggers it may be set with (empty: any).
    """

    def __init__(self, ticket_id: str, trigger: str, role: str, fields: Sequence[str],
                 allowed_roles: dict[str, list[str]],
                 allowed_triggers: dict[str, list[str]]):
        self.trigger = trigger
        self.role = role
        self.fields = list(fields)
        self.allowed_roles = {k: list(v) for k, v in allowed_roles.items()}
        self.allowed_triggers = {k: list(v) for k, v in allowed_triggers.items()}
        rules = []
        for name in self.fields:
            who = self.allowed_roles.get(name) or []
            when = self.allowed_triggers.get(name) or []
            words = f"only {', '.join(who)} may set it" if who else "any role may set it"
            if when:
                words += f", with {', '.join(when)} only"
            rules.append(f"{name}: {words}")
        super().__init__(
            ticket_id,
            f"role {role!r} may not set field(s) {', '.join(self.fields)} with trigger "
            f"{trigger!r} on ticket {ticket_id!r} ({'; '.join(rules)}); send the command "
            "without them and ask the centre to change them (a department that needs more "
            "time sends an extension request)",
        )


class NotTheHandler(CommandRefused):
    """The ticket is at a ladder level marked ``handler_only`` and the role is not its handler.

    While a ticket is escalated to such a level only the level's handler (and the centre
    roles and ``system``) may act on it; ask the handler.

    Attributes:
        ticket_id, trigger, role: the command.
        level: the ticket's level; handler: that level's handler role.
        allowed_roles: the roles that may act on the ticket there (sorted).
    """

    def __init__(self, ticket_id: str, trigger: str, role: str, level: str, handler: str,
                 allowed_roles: Sequence[str]):
        self.trigger = trigger
        self.role = role
        self.level = level
        self.handler = handler
        self.allowed_roles = tuple(sorted(allowed_roles))
        super().__init__(
            ticket_id,
            f"ticket {ticket_id!r} is at level {level!r}, which only its handler "
            f"{handler!r} handles: role {role!r} may not fire {trigger!r} on it (roles "
            f"allowed: {', '.join(self.allowed_roles)}); ask the {handler} to act or to hand "
            "the ticket back",
        )
