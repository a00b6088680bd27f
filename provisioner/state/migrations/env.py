"""Alembic's entry point: runs the revisions on the connection state/schema.py hands in.

Alembic is only ever driven from ``provisioner.state.schema`` (never its own CLI),
which opens the transaction and takes the upgrade lock first, so every revision
runs inside that one transaction.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
