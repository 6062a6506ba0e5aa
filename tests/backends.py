"""Real databases for the store contract suite: a SQLite file and a PostgreSQL schema.

A backend is just a URL, so engines in other threads and processes can open the same store.
PostgreSQL tests get a schema of their own (via the URL's ``options=-csearch_path=...``),
dropped afterwards; they skip with a reason when the server is absent, and fail instead when
GRIDWHISTLE_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_URL = os.environ.get("GRIDWHISTLE_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""``@pytest.mark.parametrize("backend", BACKENDS)`` or ``params=BACKENDS`` on a fixture."""


@contextmanager
def pg_schema() -> Iterator[str]:
    """Yield a PostgreSQL URL whose connections use a fresh schema; drop it afterwards."""
    schema = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OperationalError, ImportError) as exc:
        if os.environ.get("GRIDWHISTLE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {PG_URL} is required (GRIDWHISTLE_REQUIRE_POSTGRES=1) "
                        f"but not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set GRIDWHISTLE_POSTGRES_URL): {exc}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def store_url(backend: str, folder: Path) -> Iterator[str]:
    """A URL of an empty store on ``backend`` (``sqlite``: a file in ``folder``)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'store.sqlite'}"
    else:
        with pg_schema() as url:
            yield url
