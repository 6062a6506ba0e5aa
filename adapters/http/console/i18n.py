"""The console's own words in Chinese and English; lifecycle titles come from the YAML.

Chinese is the default for a lifecycle whose titles are in Chinese (the bundled ones),
English otherwise; a person switches with the language link (a ``gw_lang`` cookie).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

__all__ = ["LANGS", "WORDS", "default_lang", "duration", "instant", "title", "words"]

LANGS = ("zh", "en")

WORDS: dict[str, dict[str, str]] = {
    "console": {"zh": "指挥中心", "en": "Command centre"},
    "board": {"zh": "实时看板", "en": "Live board"},
    "risk": {"zh": "超期与预警", "en": "Overdue and at risk"},
    "reports": {"zh": "统计报表", "en": "Reports"},
    "sign_in": {"zh": "登录", "en": "Sign in"},
    "sign_out": {"zh": "退出", "en": "Sign out"},
    "api_key": {"zh": "API 密钥", "en": "API key"},
    "bad_key": {"zh": "密钥无效，请重新输入。", "en": "That key is not valid; try again."},
    "open_tickets": {"zh": "在办事件", "en": "Open tickets"},
    "work_orders": {"zh": "部门工单", "en": "Work orders"},
    "none": {"zh": "暂无", "en": "None"},
    "unassigned": {"zh": "未分派", "en": "Not assigned"},
    "left": {"zh": "剩余", "en": "left"},
    "over": {"zh": "已超期", "en": "over"},
    "no_deadline": {"zh": "无时限", "en": "no deadline"},
    "live": {"zh": "实时更新中", "en": "Live"},
    "offline": {"zh": "连接中断，正在重连…", "en": "Disconnected, reconnecting…"},
    "overdue": {"zh": "已超期", "en": "Overdue"},
    "at_risk": {"zh": "临期预警", "en": "At risk"},
    "by_department": {"zh": "按部门", "en": "By department"},
    "by_level": {"zh": "按吹哨层级", "en": "By whistle level"},
    "by_period": {"zh": "按时段", "en": "By period"},
    "all": {"zh": "全部", "en": "All"},
    "ticket": {"zh": "事件", "en": "Ticket"},
    "state": {"zh": "状态", "en": "State"},
    "level": {"zh": "层级", "en": "Level"},
    "department": {"zh": "部门", "en": "Department"},
    "role": {"zh": "角色", "en": "Role"},
    "lead": {"zh": "主办", "en": "Lead"},
    "co": {"zh": "协办", "en": "Co-handling"},
    "fields": {"zh": "事件信息", "en": "Details"},
    "timeline": {"zh": "处置经过", "en": "History"},
    "timers": {"zh": "计时", "en": "Open timers"},
    "due": {"zh": "到期", "en": "Due"},
    "over_since": {"zh": "超期自", "en": "Over since"},
    "diagram": {"zh": "流程图", "en": "State diagram"},
    "actions": {"zh": "操作", "en": "Actions"},
    "other_actions": {"zh": "其他角色的操作", "en": "Actions of other roles"},
    "reason": {"zh": "理由", "en": "Reason"},
    "reason_required": {"zh": "必填", "en": "required"},
    "submit": {"zh": "提交", "en": "Submit"},
    "refused": {"zh": "操作被拒绝", "en": "Refused"},
    "done": {"zh": "已完成", "en": "Done"},
    "dispatch_routing": {"zh": "按派单规则派遣", "en": "Dispatch by routing"},
    "designate": {"zh": "指定牵头部门", "en": "Designate the lead"},
    "meeting": {"zh": "联席会议", "en": "Joint meeting"},
    "present": {"zh": "参会部门", "en": "Present"},
    "minutes": {"zh": "会议纪要", "en": "Minutes"},
    "merge": {"zh": "合并重复", "en": "Merge as duplicate"},
    "original": {"zh": "原事件编号", "en": "Original ticket"},
    "add_order": {"zh": "增派工单", "en": "Add a work order"},
    "approve_bounce": {"zh": "同意退回", "en": "Approve the bounce"},
    "parent": {"zh": "所属事件", "en": "Ticket"},
    "from": {"zh": "起", "en": "From"},
    "until": {"zh": "止", "en": "Until"},
    "group_by": {"zh": "分组", "en": "Group by"},
    "period": {"zh": "时段", "en": "Period"},
    "day": {"zh": "日", "en": "Day"},
    "week": {"zh": "周", "en": "Week"},
    "month": {"zh": "月", "en": "Month"},
    "show": {"zh": "查询", "en": "Show"},
    "rates": {"zh": "办结率与按期办结率", "en": "Closure and on-time rates"},
    "times": {"zh": "用时（小时）", "en": "Times (hours)"},
    "escalations": {"zh": "升级（按到达层级）", "en": "Escalations by level reached"},
    "bounces": {"zh": "退回", "en": "Bounce-backs"},
    "volume": {"zh": "受理与办结", "en": "Received and closed"},
    "satisfaction": {"zh": "回访率与满意度", "en": "Call-backs answered and satisfaction"},
    "callbacks": {"zh": "回访", "en": "Call-backs"},
    "oversight": {"zh": "延期、挂起与督办", "en": "Extensions, suspensions, supervision"},
    "oversight_time": {"zh": "延期与挂起时长（小时）", "en": "Time extended and suspended (h)"},
    "table": {"zh": "明细", "en": "Table"},
    "hours": {"zh": "小时", "en": "h"},
    "actor": {"zh": "操作人", "en": "Actor"},
    "at": {"zh": "时间", "en": "At"},
    "what": {"zh": "事项", "en": "What"},
    "evidence": {"zh": "依据", "en": "Evidence"},
    "system": {"zh": "系统", "en": "System"},
    "current": {"zh": "当前", "en": "current"},
    "not_found": {"zh": "没有这个事件", "en": "No such ticket"},
    "too_large": {"zh": "提交内容过大", "en": "Too large to send"},
    "csv": {"zh": "下载 CSV", "en": "Download CSV"},
    "language": {"zh": "English", "en": "中文"},
    "signed_in_as": {"zh": "当前用户", "en": "Signed in as"},
    "last_update": {"zh": "最近更新", "en": "Last update"},
    "report": {"zh": "上报", "en": "Reported"},
    "breach": {"zh": "超时", "en": "Breach"},
    "sla_warning": {"zh": "预警", "en": "Warning"},
    "sla_breach": {"zh": "SLA 超时", "en": "SLA breach"},
    "migration": {"zh": "流程版本迁移", "en": "Moved to another version"},
    "transition": {"zh": "流转", "en": "Transition"},
}


def words(lang: str) -> dict[str, str]:
    """All console words in ``lang`` (``zh`` or ``en``), by key."""
    return {k: v.get(lang) or v["en"] for k, v in WORDS.items()}


def title(titles: Mapping[str, str] | None, lang: str, fallback: str) -> str:
    """A YAML ``title`` in ``lang``, else English, else ``fallback`` (the ASCII name)."""
    if not titles:
        return fallback
    return titles.get(lang) or titles.get("en") or fallback


def default_lang(lc: Any) -> str:
    """``zh`` when the lifecycle's own title has Chinese, else ``en``."""
    return "zh" if (lc.spec.title or {}).get("zh") else "en"


_WEEKDAYS = {"zh": "一二三四五六日", "en": ("Monday", "Tuesday", "Wednesday", "Thursday",
                                           "Friday", "Saturday", "Sunday")}


def instant(at: datetime, zone: tzinfo, lang: str, *, weekday: bool = True) -> str:
    """``Saturday 4 May 20:00`` / ``5月4日（周六）20:00``, in ``zone``."""
    local = at.astimezone(zone)
    if lang == "zh":
        day = f"{local.year}年{local.month}月{local.day}日"
        wd = f"（周{_WEEKDAYS['zh'][local.weekday()]}）" if weekday else ""
        return f"{day}{wd}{local:%H:%M}"
    wd = f"{_WEEKDAYS['en'][local.weekday()]} " if weekday else ""
    return f"{wd}{local.day} {local:%b %Y %H:%M}"


def duration(td: timedelta, lang: str, *, working: bool = False) -> str:
    """``4 working hours``, ``1 d 2 h``, ``30 min`` / ``4个工作小时``, ``1天2小时``, ``30分钟``."""
    seconds = int(abs(td.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if working:
        h = seconds / 3600
        text = f"{h:g}"
        return f"{text}个工作小时" if lang == "zh" else \
            f"{text} working hour{'s' if h != 1 else ''}"
    parts = []
    if lang == "zh":
        if days:
            parts.append(f"{days}天")
        if hours:
            parts.append(f"{hours}小时")
        if minutes or not parts:
            parts.append(f"{minutes}分钟")
        return "".join(parts)
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)
