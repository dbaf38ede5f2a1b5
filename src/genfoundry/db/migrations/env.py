"""Alembic environment: runs on the connection handed over by `upgrade_database`, or on a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from genfoundry.db.tables import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x) or call genfoundry.db.session.upgrade_database")
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
