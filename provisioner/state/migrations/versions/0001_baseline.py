"""Baseline: the schema as the store created it before migrations existed.

A state directory made by an older provisioner already has some of these
tables (``discovered`` only once discovery ran): each is created only when it
is missing, so such a database upgrades in place and its rows are kept.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the event log is append-only'; END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "nodes" not in have:
        op.create_table(
            "nodes",
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("state", sa.String(32), nullable=False),
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("step", sa.String(64), nullable=True),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            sa.Column("state_since", sa.DateTime, nullable=False),
            sa.Column("build_mode", sa.Boolean, nullable=False),
            sa.Column("deploy_id", sa.String(32), nullable=True),
            sa.Column("deploy_started_at", sa.DateTime, nullable=True),
        )
    if "events" not in have:
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("node", sa.String(63), sa.ForeignKey("nodes.name"), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("event", sa.String(32), nullable=True),
            sa.Column("from_state", sa.String(32), nullable=True),
            sa.Column("to_state", sa.String(32), nullable=True),
            sa.Column("message", sa.Text, nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
        )
        op.create_index("ix_events_node", "events", ["node"])
    if "reservations" not in have:
        op.create_table(
            "reservations",
            sa.Column("node", sa.String(63), sa.ForeignKey("nodes.name"), primary_key=True),
            sa.Column("token", sa.String(36), nullable=False),
            sa.Column("owner", sa.String(128), nullable=False),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("operation", sa.String(64), nullable=False),
            sa.Column("acquired_at", sa.DateTime, nullable=False),
            sa.Column("expires_at", sa.DateTime, nullable=False),
        )
    if "discovered" not in have:
        op.create_table(
            "discovered",
            sa.Column("mac", sa.String(17), primary_key=True),
            sa.Column("report", sa.Text, nullable=False),
            sa.Column("source", sa.String(64), nullable=False),
            sa.Column("first_seen", sa.DateTime, nullable=False),
            sa.Column("last_seen", sa.DateTime, nullable=False),
            sa.Column("reports", sa.Integer, nullable=False),
            sa.Column("enrolled_as", sa.String(63), nullable=True),
        )
    # The event log is append-only: the database itself refuses edits.
    dialect = op.get_bind().dialect.name
    for verb in ("UPDATE", "DELETE"):
        name = f"events_no_{verb.lower()}"
        if dialect == "sqlite":
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {verb} ON events "
                "BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END"
            )
        elif dialect == "postgresql":
            op.execute(_PG_APPEND_ONLY)
            op.execute(
                f"CREATE OR REPLACE TRIGGER {name} BEFORE {verb} ON events "
                "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()"
            )


def downgrade() -> None:
    raise NotImplementedError("the baseline has no downgrade: restore a backup instead")
