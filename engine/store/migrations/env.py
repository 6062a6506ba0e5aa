"""Alembic environment for Gridwhistle's own tables (run through :mod:`engine.store.migrate`).

There is no ``alembic.ini``: :func:`engine.store.migrate.alembic_config` builds the Config in
code and hands the open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from engine.store.migrate import (
    VERSION_TABLE,
    include_name,
    render_item,
    skip_empty_revision,
)
from engine.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Gridwhistle migrations through engine.store.migrate (or "
                       "`gridwhistle db upgrade`), which passes an open connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    compare_type=True,
    render_item=render_item,
    process_revision_directives=skip_empty_revision,  # no change: no empty revision file
)
with context.begin_transaction():
    context.run_migrations()
