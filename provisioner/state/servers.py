"""The ``serve`` instances sharing one state database, and their heartbeats.

Several boot servers, each on its provisioning networks, share one PostgreSQL
(issue 22). Each registers under a name unique among the running instances,
with the networks it answers, and heartbeats; one silent for longer than it
declared when registering (``Store.server_timeout``), or stopped, is dead: its
reservations count as stale, so a partner serving the same network takes its nodes in flight over
(pipeline/takeover.py). ``provisioner servers`` lists them.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from provisioner.state.machine import EventKind
from provisioner.state.store import (
    EventRow,
    ReservationRow,
    ServerRow,
    Store,
    server_alive,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerRecord:
    name: str
    host: str
    pid: int
    networks: tuple[str, ...]
    url: str
    started_at: datetime
    heartbeat_at: datetime
    stopped: bool
    alive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "networks": list(self.networks),
            "url": self.url,
            "started_at": _iso(self.started_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "alive": self.alive,
            "stopped": self.stopped,
        }


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


class Servers:
    """Registration and heartbeats, in the node state store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register(
        self, name: str, networks: Iterable[str], url: str, starting: bool = True
    ) -> list[str]:
        """Record this instance as up. ``starting``: an earlier life of the same name is
        dead (names are unique among running instances): its reservations are released,
        each with a note, so this instance resumes those nodes at once. Returns their
        names. (A running instance whose row went missing registers again with
        ``starting`` False: what it holds, it is driving.)"""
        now = utcnow()
        listed = ",".join(sorted(set(networks)))
        silent = self.store.server_timeout.total_seconds()
        with self.store.writing() as s:
            row = s.get(ServerRow, name, with_for_update=True)
            if row is None:
                s.add(ServerRow(name=name, host=socket.gethostname(), pid=os.getpid(),
                                networks=listed, url=url, started_at=now, heartbeat_at=now,
                                silent_after=silent, stopped=False))  # fmt: skip
            else:
                row.host, row.pid, row.networks, row.url = (
                    socket.gethostname(),
                    os.getpid(),
                    listed,
                    url,
                )
                row.started_at, row.heartbeat_at, row.stopped = now, now, False
                row.silent_after = silent
            held = []
            if starting:
                found = s.scalars(select(ReservationRow.node).where(ReservationRow.server == name))
                held = list(found)
            if held:
                s.execute(delete(ReservationRow).where(ReservationRow.server == name))
            for node in held:
                s.add(EventRow(node=node, at=now, kind=EventKind.NOTE.value, actor=name,
                               message=f"reservation of server {name}'s earlier run released: "
                               "it restarted"))  # fmt: skip
        log.info("server %s: registered for networks %s", name, listed or "(none)")
        return held

    def heartbeat(self, name: str) -> bool:
        """Say this instance is alive; False if its row is gone (register again)."""
        with self.store.writing() as s:
            result = s.execute(
                update(ServerRow)
                .where(ServerRow.name == name)
                .values(heartbeat_at=utcnow(), stopped=False)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def stop(self, name: str) -> None:
        """A clean shutdown: partners need not wait for the timeout to take over."""
        with self.store.writing() as s:
            s.execute(
                update(ServerRow)
                .where(ServerRow.name == name)
                .values(stopped=True)
                .execution_options(synchronize_session=False)
            )
        log.info("server %s: stopped", name)

    def all(self) -> list[ServerRecord]:
        now = utcnow()
        with self.store.reading() as s:
            rows = s.scalars(select(ServerRow).order_by(ServerRow.name)).all()
            return [
                ServerRecord(
                    r.name,
                    r.host,
                    r.pid,
                    tuple(n for n in r.networks.split(",") if n),
                    r.url,
                    r.started_at,
                    r.heartbeat_at,
                    r.stopped,
                    server_alive(r, now),
                )
                for r in rows
            ]

    def serving(self) -> dict[str, list[str]]:
        """Network -> the names of the live instances serving it."""
        found: dict[str, list[str]] = {}
        for server in self.all():
            if server.alive:
                for network in server.networks:
                    found.setdefault(network, []).append(server.name)
        return found
