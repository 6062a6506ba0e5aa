"""Periodic work: tickets created on a cron rule (the twice-daily grid patrol)."""

from engine.periodic.runner import add_periodic_jobs, occurrences, run_periodic

__all__ = ["add_periodic_jobs", "occurrences", "run_periodic"]
