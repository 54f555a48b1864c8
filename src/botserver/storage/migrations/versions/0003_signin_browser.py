"""Sign-in: bind each pending sign-in to the browser that started it.

Revision ID: 0003_signin_browser
Revises: 0002_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_signin_browser"
down_revision = "0002_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Pending sign-ins live ten minutes; ones started before the upgrade have no browser.
    op.execute(sa.text("DELETE FROM auth_states"))
    with op.batch_alter_table("auth_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("browser_hash", sa.String(length=64), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("auth_states", schema=None) as batch_op:
        batch_op.drop_column("browser_hash")
