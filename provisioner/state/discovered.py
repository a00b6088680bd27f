"""Machines that reported their hardware from a discovery boot and are not nodes yet.

One row per boot MAC: the latest checked report (JSON), where it came from, when
it was first and last seen, how often it reported, and, once enrolled, the node
it became. A report is data: it is only read back through
``discovery.report.HardwareReport``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.state.store import Base, Store, utcnow


class DiscoveredRow(Base):
    __tablename__ = "discovered"

    mac: Mapped[str] = mapped_column(String(17), primary_key=True)
    report: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    reports: Mapped[int] = mapped_column(Integer, default=1)
    enrolled_as: Mapped[str | None] = mapped_column(String(63), nullable=True)


@dataclass(frozen=True)
class Discovered:
    mac: str
    report: dict[str, Any]
    source: str
    first_seen: datetime
    last_seen: datetime
    reports: int
    enrolled_as: str | None

    @classmethod
    def of(cls, row: DiscoveredRow) -> Discovered:
        return cls(
            row.mac,
            json.loads(row.report),
            row.source,
            row.first_seen,
            row.last_seen,
            row.reports,
            row.enrolled_as,
        )


class Discoveries:
    """The discovered machines, in the node state store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store  # its table comes with the schema (state/migrations)

    def record(self, mac: str, report: dict[str, Any], source: str) -> bool:
        """Keep ``report`` as the machine's latest; True when the machine is new."""
        now = utcnow()
        text = json.dumps(report, sort_keys=True)
        with self.store.writing() as s:
            row = s.get(DiscoveredRow, mac)
            if row is None:
                s.add(DiscoveredRow(mac=mac, report=text, source=source, first_seen=now,
                                    last_seen=now, reports=1))  # fmt: skip
                return True
            row.report, row.source, row.last_seen = text, source, now
            row.reports += 1
            return False

    def get(self, mac: str) -> Discovered | None:
        with self.store.reading() as s:
            row = s.get(DiscoveredRow, mac)
            return Discovered.of(row) if row else None

    def all(self) -> list[Discovered]:
        with self.store.reading() as s:
            rows = s.scalars(select(DiscoveredRow).order_by(DiscoveredRow.first_seen)).all()
            return [Discovered.of(r) for r in rows]

    def mark_enrolled(self, mac: str, node: str) -> None:
        with self.store.writing() as s:
            row = s.get(DiscoveredRow, mac)
            if row is not None:
                row.enrolled_as = node
