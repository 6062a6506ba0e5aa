"""Work orders: each department's share of a ticket, kept consistent with the ticket.

* :mod:`~engine.workorders.model`: what the services return (:class:`WorkOrder`, SLAs).
* :mod:`~engine.workorders.routing`: the routing table, applied.
* :mod:`~engine.workorders.state`: the work-order state in the working copy, and its tables.
* :mod:`~engine.workorders.orders`: issuing, listing, retiring work orders on a unit.
* :mod:`~engine.workorders.participant`: the rules that run with every change.
"""

from engine.workorders.model import LIVE_EXCLUDED, PartSLA, TicketSLA, WorkOrder, rule_met
from engine.workorders.participant import WorkOrders, is_work_order_lifecycle
from engine.workorders.routing import Route, route_for

__all__ = [
    "LIVE_EXCLUDED",
    "PartSLA",
    "Route",
    "TicketSLA",
    "WorkOrder",
    "WorkOrders",
    "is_work_order_lifecycle",
    "route_for",
    "rule_met",
]
