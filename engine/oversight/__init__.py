"""Oversight (issue 11): extension requests, suspensions and supervision notices.

See :mod:`engine.oversight.participant` for the rules, :mod:`engine.oversight.service` for
the commands and :mod:`engine.oversight.model` for the rows and history kinds;
``docs/oversight.md`` for the whole.
"""

from engine.oversight.model import KINDS, OversightState, SupervisionNotice, TimeRequest
from engine.oversight.participant import RESUME_TIMER, Oversight
from engine.oversight.service import (
    decide_extension,
    notices_of,
    request_extension,
    requests_of,
    resume,
    send_notice,
    suspend,
)

__all__ = [
    "KINDS",
    "RESUME_TIMER",
    "Oversight",
    "OversightState",
    "SupervisionNotice",
    "TimeRequest",
    "decide_extension",
    "notices_of",
    "request_extension",
    "requests_of",
    "resume",
    "send_notice",
    "suspend",
]
