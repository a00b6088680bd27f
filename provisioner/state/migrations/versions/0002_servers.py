"""Boot server instances and which server holds a reservation (issue 22).

``servers``: one row per ``serve`` instance sharing the database, with the
networks it answers, its last heartbeat and how long a silence makes it dead
(its own heartbeat interval times the beats it may miss). ``reservations.server``: the
instance whose pipeline holds the node, so a partner can take the node over
when that instance stops heartbeating (a pid on another host says nothing).

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("networks", sa.Text, nullable=False),
        sa.Column("url", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        sa.Column("silent_after", sa.Float, nullable=False),
        sa.Column("stopped", sa.Boolean, nullable=False),
    )
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("server", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("server")
    op.drop_table("servers")
