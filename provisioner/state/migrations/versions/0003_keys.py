"""Keys the instances sharing a database must agree on (issue 22).

``keys``: one row per key, written once by whichever process needs it first and
never changed. The deploy-token HMAC key lives here so that a token one boot
server put in a node's boot script verifies on its partner after a takeover;
a key per state directory would make every takeover spend the node's token.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("keys")
