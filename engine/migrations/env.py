"""Run by Alembic for every command: migrate on the connection Caseloop hands over.

There is deliberately no URL here and no offline mode: the connection comes from
the application's engine (see :func:`caseloop.migrations.config`), so the
migrations see exactly the database, driver and pragmas the application uses.
"""

from __future__ import annotations

from alembic import context

# Both set by caseloop.migrations.config(); nothing is imported from Caseloop here,
# since Alembic runs this file by path, outside the package.
connection = context.config.attributes.get("connection")
options = context.config.attributes.get("options", {})
if connection is None:
    raise RuntimeError("Caseloop's migrations run on the application's database: use "
                       "'caseloop db upgrade' or caseloop.migrations.upgrade(engine), "
                       "not the alembic command line.")

context.configure(
    connection=connection,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    **options,
)
with context.begin_transaction():
    context.run_migrations()
