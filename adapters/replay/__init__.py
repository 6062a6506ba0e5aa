"""Replaying service-request exports through a lifecycle, streaming.

Boston 311 and St. Louis CSV exports through mappings, Chicago's Open311 answers directly, and
any other city's export by a mapping of its own (see ``docs/replay.md``).
"""

from adapters.replay.encoding import UndecodableData, UnknownEncoding
from adapters.replay.mapping import MappingSpec, bundled_mappings, load_mapping
from adapters.replay.ownership import WouldEmptyDatabase
from adapters.replay.progress import ProgressLines, ReplayProgress
from adapters.replay.records import MalformedCsv
from adapters.replay.replayer import ReplayOutcome, check_mapping, preflight, replay
from adapters.replay.report import build_report, print_report
from adapters.replay.source import RepeatedColumn

__all__ = [
    "BUNDLED_SAMPLE",
    "MalformedCsv",
    "MappingSpec",
    "ProgressLines",
    "RepeatedColumn",
    "ReplayOutcome",
    "ReplayProgress",
    "UndecodableData",
    "UnknownEncoding",
    "WouldEmptyDatabase",
    "build_report",
    "bundled_mappings",
    "check_mapping",
    "load_mapping",
    "preflight",
    "print_report",
    "replay",
]

from pathlib import Path

BUNDLED_SAMPLE = Path(__file__).resolve().parent / "data" / "boston311_sample.csv"
"""The bundled real Boston 311 sample (see ``data/PROVENANCE.md``)."""
