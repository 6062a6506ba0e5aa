"""A refusal in the console's language: each typed error the engine raises for an action.

The ticket page shows these words above the engine's own message (English, with the data):
"角色“职能部门”不能执行“升级处置”；可以执行的角色：指挥中心、系统。" Titles come from the lifecycle;
instants are shown in the page's zone. An error without words of its own here gets the
generic line ("引擎拒绝了这个操作。"), so a new error class still shows the engine's message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.http.console.i18n import duration, title, words
from adapters.http.console.zones import PageZone, page_zone
from adapters.http.problems import Problem
from engine import (
    BounceBudgetExceeded,
    BounceLimitReached,
    BounceNeedsApproval,
    CommandRefused,
    ConcurrencyConflict,
    Engine,
    EvidenceInvalid,
    EvidenceMissing,
    FieldNotAllowed,
    GuardRejected,
    HostCallbackFailed,
    InvalidFields,
    MinimumLagNotReached,
    NoRouting,
    NotADuplicate,
    NotTheHandler,
    OutsideCalendar,
    OutsideWorkingHours,
    OversightRefused,
    RoleNotAllowed,
    TicketNotFound,
    TopLevelReached,
    TriggerNotAllowed,
    UnknownDepartment,
    UnknownOrganisation,
    WorkOrdersOpen,
)
from engine.durations import parse_duration

__all__ = ["refusal_words"]


class _Say:
    """What the wording functions need: the lifecycle's titles in the page's language."""

    def __init__(self, engine: Engine, served: tuple[str, ...], lc: Any, lang: str,
                 zone: PageZone):
        self.engine, self.served, self.lc, self.lang, self.zone = engine, served, lc, lang, zone
        self.zh = lang == "zh"
        self.sep = "、" if self.zh else ", "

    def role(self, role: str) -> str:
        for name in (self.lc.spec.name, *self.served):
            try:
                r = self.engine.lifecycle(name).spec.roles.get(role)
            except Exception:  # a lifecycle not deployed here: skip it
                continue
            if r is not None:
                return title(r.title, self.lang, role)
        return role

    def roles(self, roles: Any) -> str:
        return self.sep.join(self.role(r) for r in roles)

    def trigger(self, trigger: str) -> str:
        return next((title(t.title, self.lang, t.trigger) for t in self.lc.spec.transitions
                     if t.trigger == trigger), words(self.lang).get(trigger, trigger))

    def state(self, state: str) -> str:
        s = self.lc.spec.states.get(state)
        return title(s.title if s else None, self.lang, state)

    def level(self, level: str) -> str:
        lv = next((x for x in self.lc.spec.levels if x.name == level), None)
        return title(lv.title if lv else None, self.lang, level)

    def field(self, name: str) -> str:
        f = self.lc.spec.fields.get(name)
        return title(f.title if f else None, self.lang, name)

    def fields(self, names: Any) -> str:
        return self.sep.join(self.field(n) for n in names)

    def deadline(self, name: str) -> str:
        d = self.lc.spec.deadlines.get(name)
        return title(d.title if d else None, self.lang, name)

    def causes(self) -> dict[str, str]:
        oversight = self.lc.spec.oversight
        suspension = oversight.suspension if oversight is not None else None
        if suspension is None:
            return {}
        return {k: title(c.title, self.lang, k) for k, c in suspension.causes.items()}

    def calendar(self, name: str) -> str:
        c = self.lc.spec.calendars.get(name)
        return title(c.title if c else None, self.lang, name)


def _role(e: RoleNotAllowed, s: _Say) -> str:
    if s.zh:
        return (f"角色“{s.role(e.role)}”不能执行“{s.trigger(e.trigger)}”；"
                f"可以执行的角色：{s.roles(e.allowed_roles)}。")
    return (f"The role “{s.role(e.role)}” may not “{s.trigger(e.trigger)}”; roles that may: "
            f"{s.roles(e.allowed_roles)}.")


def _field(e: FieldNotAllowed, s: _Say) -> str:
    names = s.sep.join(e.fields)
    if s.zh:
        return f"此角色不能修改字段：{names}。请联系指挥中心修改；需要更多时间请提交延期申请。"
    return (f"This role may not change: {names}. Ask the command centre; to get more time, "
            "send an extension request.")


def _handler(e: NotTheHandler, s: _Say) -> str:
    if s.zh:
        return f"此事件已升级到“{e.level}”级，只能由{s.role(e.handler)}或指挥中心处理。"
    return (f"This ticket is escalated to level {e.level!r}: only {s.role(e.handler)} or the "
            "centre act on it.")


_OVERSIGHT_WHAT = {
    "extension": ("延期申请", "extension requests"),
    "suspension": ("挂起", "suspension"),
    "supervision notice": ("督办", "supervision notices"),
}


def _when(value: object, s: _Say) -> str:
    """An ISO instant of a refusal's details in the page's zone, labelled."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return s.zone.at(at if at.tzinfo else at.replace(tzinfo=UTC), s.lang)


def _span(value: object, s: _Say) -> str:
    """An ISO 8601 duration of a refusal's details in words (``3天``, ``2 d``)."""
    try:
        return duration(parse_duration(str(value)), s.lang)
    except (ValueError, TypeError):
        return str(value)


def _oversight(e: OversightRefused, s: _Say) -> str:
    """Each typed oversight refusal (its ``why``) in its own words."""
    d, zh = e.details, s.zh
    n = d.get("n")
    deadline = d.get("deadline")
    name = s.deadline(str(deadline)) if deadline else ""
    why = e.why
    if why == "suspended":
        return ("此事件已挂起：须由指挥中心先恢复（挂起期间只能办结）。" if zh else
                "This ticket is suspended: the centre resumes it first (meanwhile it may only "
                "be closed).")
    if why == "not_offered":
        what = _OVERSIGHT_WHAT.get(str(d.get("what")))
        if what is None:
            return ("此流程不提供这项延期、挂起或督办。" if zh else
                    "This lifecycle offers no such extension, suspension or supervision.")
        return (f"此流程不提供{what[0]}。" if zh else f"This lifecycle offers no {what[1]}.")
    if why == "deadline_not_extensible":
        oversight = s.lc.spec.oversight
        ext = oversight.extension if oversight is not None else None
        may = s.sep.join(s.deadline(x) for x in (ext.deadlines if ext else ()))
        if zh:
            return f"时限“{name}”不能延期" + (f"；可以延期的时限：{may}。" if may else "。")
        return (f"The deadline “{name}” cannot be extended"
                + (f"; deadlines that can: {may}." if may else "."))
    if why == "deadline_not_running":
        return (f"时限“{name}”当前未在计时，无需延期。" if zh else
                f"The deadline “{name}” is not running on this ticket now; there is nothing to "
                "extend.")
    if why == "open_request":
        return (f"时限“{name}”已有一份延期申请（第 {n} 号）待指挥中心审批；请等待审批结果。"
                if zh else f"An extension of “{name}” (request {n}) is already waiting for "
                "the centre's decision; wait for it.")
    if why == "limit_reached":
        limit = d.get("limit")
        if str(d.get("what")) == "suspension":
            return (f"此事件已挂起 {limit} 次，达到上限，不能再挂起。" if zh else
                    f"This ticket was suspended {limit} time(s), the limit: it cannot be "
                    "suspended again.")
        which = d.get("deadline")
        label = s.deadline(str(which)) if which else ("此时限" if zh else "this deadline")
        return (f"“{label}”已延期 {limit} 次，达到上限，不能再延期。" if zh else
                f"“{label}” was extended {limit} time(s), the limit: it cannot be extended "
                "again.")
    if why == "not_later":
        at = _when(d.get("due"), s)
        return (f"新的到期时间须晚于 {at}（现在或当前到期时间）；请选择更晚的时间。" if zh else
                f"The new due time must be later than {at} (now or the current due time); "
                "choose a later one.")
    if why == "too_long":
        limit = _span(d.get("limit"), s)
        if "suspension" in str(d.get("what")):
            return (f"挂起时间太长：一次最多挂起 {limit}。" if zh else
                    f"That suspension is too long: at most {limit}.")
        return (f"延期太长：最多可延期 {limit}。" if zh else
                f"That extension is too long: at most {limit}.")
    if why == "unknown_request":
        return (f"此事件没有第 {n} 号延期申请；请刷新页面。" if zh else
                f"This ticket has no extension request {n}; reload the page.")
    if why == "not_open":
        status = str(d.get("status") or "")
        done = {"approved": ("已批准", "approved"), "refused": ("已驳回", "refused")}.get(
            status, (status, status))
        return (f"第 {n} 号延期申请已审批（{done[0]}），不能再次审批。" if zh else
                f"Extension request {n} was decided already ({done[1]}); it cannot be "
                "decided again.")
    if why == "unknown_cause":
        causes = s.causes()
        cause = str(d.get("cause") or "")
        known = s.sep.join(causes.values()) or str(d.get("known") or "")
        return (f"“{causes.get(cause, cause)}”不是此流程规定的挂起原因；可选原因：{known}。"
                if zh else f"“{causes.get(cause, cause)}” is not a cause of suspension in "
                f"this lifecycle; causes: {known}.")
    if why == "not_suspended":
        return ("此事件未挂起，无需恢复。" if zh else
                "This ticket is not suspended: there is nothing to resume.")
    if why == "ticket_ended":
        return ("此事件已结束，不能挂起。" if zh else
                "This ticket has ended: it cannot be suspended.")
    return ("延期、挂起或督办规则不允许此操作。" if zh
            else "The rules for extensions, suspension and supervision do not allow this.")


def _invalid(e: InvalidFields, s: _Say) -> str:
    if set(e.errors) == {"reason"}:
        return "请填写理由。" if s.zh else "Give a reason."
    names = s.fields(sorted(e.errors))
    return (f"以下字段需要填写或取值不符合要求：{names}。" if s.zh
            else f"These fields are missing or not valid: {names}.")


def _evidence_missing(e: EvidenceMissing, s: _Say) -> str:
    from adapters.http.console.evidence_form import needs_of_rules

    needs = needs_of_rules(s.lc, e.trigger, e.role, s.lang)
    what = ("；".join(n.text for n in needs) if s.zh else "; ".join(n.text for n in needs)) \
        or s.sep.join(e.missing)
    if s.zh:
        return f"“{s.trigger(e.trigger)}”须附证据：{what}。请选择文件后再提交。"
    return f"“{s.trigger(e.trigger)}” needs evidence: {what}. Choose the file(s) and send again."


def _evidence_invalid(e: EvidenceInvalid, s: _Say) -> str:
    return (f"第 {e.index + 1} 个附件不符合此流程的要求（见下方说明）；请换一个文件。" if s.zh
            else f"Attachment {e.index + 1} is not accepted here (see below); choose another "
            "file.")


def _guard(e: GuardRejected, s: _Say) -> str:
    guards = s.sep.join(e.guards)
    if s.zh:
        return f"“{s.trigger(e.trigger)}”的前置条件未满足（{guards}）；满足条件后再试。"
    return f"The conditions of “{s.trigger(e.trigger)}” are not met ({guards}); meet them first."


def _top(e: TopLevelReached, s: _Say) -> str:
    if s.zh:
        return f"此事件已在最高层级“{s.level(e.level)}”，不能再升级；请在本层级处置。"
    return (f"This ticket is at the top level, “{s.level(e.level)}”: it cannot go higher; "
            "handle it at this level.")


def _conflict(e: ConcurrencyConflict, s: _Say) -> str:
    return ("此事件刚被其他人修改，本次操作未执行；请刷新页面，查看最新状态后再试。" if s.zh else
            "Someone else changed this ticket just now, so nothing was done; reload the page "
            "and try again.")


def _trigger(e: TriggerNotAllowed, s: _Say) -> str:
    if s.zh:
        return (f"事件当前为“{s.state(e.state)}”，不能执行“{s.trigger(e.trigger)}”"
                "（可能已有人处理）；请刷新页面。")
    return (f"The ticket is now “{s.state(e.state)}”, where “{s.trigger(e.trigger)}” is not "
            "possible (someone may have acted); reload the page.")


def _bounce_approval(e: BounceNeedsApproval, s: _Say) -> str:
    return ("首接部门退回须经指挥中心同意；请指挥中心先“同意退回”，或由本部门办理。" if s.zh else
            "The first department to receive a ticket bounces it only with the centre's "
            "approval; ask the centre to approve, or handle it.")


def _bounce_limit(e: BounceLimitReached, s: _Say) -> str:
    return (f"此事件已退回 {e.count} 次，达到上限 {e.limit} 次，不能再退回；请办理。" if s.zh
            else f"This ticket was bounced {e.count} time(s), the limit is {e.limit}: it "
            "cannot be bounced again; handle it.")


def _bounce_budget(e: BounceBudgetExceeded, s: _Say) -> str:
    hours = f"{e.budget_seconds / 3600:g}"
    return (f"已超过可退回的时限（接单后 {hours} 小时内）；请办理，或请指挥中心改派牵头部门。"
            if s.zh else f"The time to bounce ({hours} h after receiving it) has passed; "
            "handle it, or ask the centre to designate another lead.")


def _duplicate(e: NotADuplicate, s: _Say) -> str:
    return (f"不能合并到事件 {e.original_id}：两者不是同一问题的重复上报（见下方说明）。" if s.zh
            else f"This ticket cannot be merged into {e.original_id}: they are not reports "
            "of the same problem (see below).")


def _department(e: UnknownDepartment, s: _Say) -> str:
    return (f"流程中没有部门“{e.department}”；请从列表中选择。" if s.zh
            else f"The lifecycle has no department {e.department!r}; choose one from the list.")


def _open_orders(e: WorkOrdersOpen, s: _Say) -> str:
    ids = s.sep.join(e.work_orders)
    return (f"工单 {ids} 尚未办结，还不能“{s.trigger(e.trigger)}”；请各部门办结工单（办结后系统自动"
            "处置完毕），或由指挥中心撤回不再需要的工单。" if s.zh
            else f"Work orders {ids} are still open, so “{s.trigger(e.trigger)}” is not "
            "possible yet: the departments finish them (the ticket is then resolved for "
            "them), or the centre withdraws those no longer needed.")


def _routing(e: NoRouting, s: _Say) -> str:
    return ("此流程没有派单规则（部门与派单表），不能按规则派遣。" if s.zh
            else "This lifecycle has no routing table, so it cannot dispatch by routing.")


def _organisation(e: UnknownOrganisation, s: _Say) -> str:
    return (f"“{e.organisation}”不是此流程的外部单位。" if s.zh
            else f"{e.organisation!r} is not an outside organisation of this lifecycle.")


def _calendar(e: OutsideCalendar, s: _Say) -> str:
    if s.zh:
        return (f"此操作需要工作日历“{s.calendar(e.calendar)}”在 {e.day} 的安排，超出其有效期；"
                "请管理员更新流程的日历。")
    return (f"This needs the calendar “{s.calendar(e.calendar)}” on {e.day}, outside its "
            "validity; ask the administrator to update the lifecycle's calendar.")


def _lag(e: MinimumLagNotReached, s: _Say) -> str:
    at = s.zone.at(e.earliest, s.lang)
    return (f"“{s.trigger(e.trigger)}”太早：最早可在 {at} 执行。" if s.zh
            else f"Too early for “{s.trigger(e.trigger)}”: it is possible from {at}.")


def _hours(e: OutsideWorkingHours, s: _Say) -> str:
    at = s.zone.at(e.next_opening, s.lang)
    return (f"现在不在“{s.calendar(e.calendar)}”的值守时间内；下次开始于 {at}。" if s.zh
            else f"Outside the hours of “{s.calendar(e.calendar)}”; they open next at {at}.")


def _host(e: HostCallbackFailed, s: _Say) -> str:
    return (f"系统处理出错（{e.callback}），未做任何修改；请联系管理员。" if s.zh
            else f"The system's step {e.callback!r} failed; nothing was changed. Tell the "
            "administrator.")


def _not_found(e: TicketNotFound, s: _Say) -> str:
    return "没有这个事件。" if s.zh else "No such ticket."


_WORDINGS: list[tuple[type[Exception], Callable[[Any, _Say], str]]] = [
    (RoleNotAllowed, _role), (FieldNotAllowed, _field), (NotTheHandler, _handler),
    (OversightRefused, _oversight), (InvalidFields, _invalid),
    (EvidenceMissing, _evidence_missing), (EvidenceInvalid, _evidence_invalid),
    (GuardRejected, _guard), (TopLevelReached, _top), (ConcurrencyConflict, _conflict),
    (TriggerNotAllowed, _trigger), (BounceNeedsApproval, _bounce_approval),
    (BounceLimitReached, _bounce_limit), (BounceBudgetExceeded, _bounce_budget),
    (NotADuplicate, _duplicate), (UnknownDepartment, _department), (NoRouting, _routing),
    (WorkOrdersOpen, _open_orders),
    (UnknownOrganisation, _organisation), (OutsideCalendar, _calendar),
    (MinimumLagNotReached, _lag), (OutsideWorkingHours, _hours), (HostCallbackFailed, _host),
    (TicketNotFound, _not_found),
]
"""Each typed refusal and its words (first match wins: subclasses before their bases)."""


def _problem(exc: Problem, s: _Say) -> str:
    if exc.slug == "wrong-department":
        return "此密钥只能处理本部门的事件和工单。" if s.zh else \
            "This key acts for its own department only."
    if exc.slug == "evidence-rejected":
        x = exc.extra
        name = x.get("filename") or ("文件" if s.zh else "the file")
        why = x.get("why")
        if why == "too_large":
            limit = f"{(x.get('limit') or 0) / (1024 * 1024):g} MB"
            return (f"文件“{name}”太大：每个文件不超过 {limit}。" if s.zh
                    else f"“{name}” is too large: at most {limit} a file.")
        if why == "mismatch":
            return (f"文件“{name}”声明为 {x.get('declared')}，内容却是 {x.get('detected')}；"
                    "请上传原始文件。" if s.zh else
                    f"“{name}” says it is {x.get('declared')} but its content is "
                    f"{x.get('detected')}; send the original file.")
        if why == "unknown_content":
            return (f"无法识别文件“{name}”的内容；请上传照片、视频、录音或 PDF 文件。" if s.zh
                    else f"The content of “{name}” is of no known type; send a photo, video, "
                    "audio recording or PDF.")
        kind = x.get("detected") or x.get("declared")
        return (f"此流程不接受“{name}”的文件类型（{kind}）。" if s.zh
                else f"This lifecycle does not accept the type of “{name}” ({kind}).")
    return "操作未完成。" if s.zh else "The action was not done."


def refusal_words(exc: Exception, engine: Engine, served: tuple[str, ...], lc: Any,
                  lang: str, zone: PageZone | None = None) -> str:
    """A refusal in the console's language (the engine's own message is shown beside it).

    Args:
        exc: the refusal (a Gridwhistle error or the adapter's :class:`Problem`).
        engine: the engine (role titles of the served lifecycles).
        served: the lifecycles the app serves.
        lc: the ticket's lifecycle (titles of its triggers, states, levels, fields).
        lang: ``zh`` or ``en``.
        zone: where to show instants (default: the lifecycle's zone).
    """
    say = _Say(engine, served, lc, lang, zone or page_zone(engine.lifecycle(lc.spec.name)))
    if isinstance(exc, Problem):
        return _problem(exc, say)
    for cls, wording in _WORDINGS:
        if isinstance(exc, cls):
            return wording(exc, say)
    if isinstance(exc, CommandRefused):
        return "引擎拒绝了这个操作。" if say.zh else "The engine refused this action."
    return "操作未完成。" if say.zh else "The action was not done."
