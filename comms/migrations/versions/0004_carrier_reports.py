"""carrier reports inbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:10:00
"""
from alembic import op
import sqlalchemy as sa
import comms.models.base


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('carrier_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('received_at', comms.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_reports'))
    )


def downgrade() -> None:
    op.drop_table('carrier_reports')
