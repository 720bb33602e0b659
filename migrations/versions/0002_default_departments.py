"""default departments (reference data the default catalogue routes to)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The rows are written out here, as they were when this revision was made: a migration carries
what it seeds, so a later change to reference data is a new revision, never a rewrite of this one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

department = sa.table(
    "department",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("short_name", sa.String),
    sa.column("active", sa.Boolean),
)

DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    # (code, name, short_name)
    ("CGJ", "区城市管理和综合执法局", "城管"),
    ("ZJJ", "区住房城乡建设局", "住建"),
    ("STHJ", "市生态环境局禅城分局", "生态环境"),
    ("SCJG", "区市场监督管理局", "市场监管"),
    ("WJJ", "区卫生健康局", "卫健"),
    ("GAJ", "市公安局禅城分局", "公安"),
    ("XFJ", "区消防救援大队", "消防"),
    ("YJJ", "区应急管理局", "应急"),
    ("RSJ", "区人力资源和社会保障局", "人社"),
    ("JTJ", "区交通运输局", "交通"),
    ("SWJ", "区水务局", "水务"),
    ("GDJ", "禅城供电局", "供电"),
    ("MZJ", "区民政局", "民政"),
    ("ZZB", "镇街综治办", "综治办"),
    ("ZRZY", "市自然资源局禅城分局", "自然资源"),
    ("SFJ", "区司法局", "司法"),
)


def upgrade() -> None:
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.select(department.c.code))}
    rows = [
        {"code": code, "name": name, "short_name": short_name, "active": True}
        for code, name, short_name in DEPARTMENTS
        if code not in existing
    ]
    if rows:
        op.bulk_insert(department, rows)


def downgrade() -> None:
    codes = [code for code, _name, _short_name in DEPARTMENTS]
    op.execute(department.delete().where(department.c.code.in_(codes)))
