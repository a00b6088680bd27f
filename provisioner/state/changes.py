"""Live progress from the database: PostgreSQL's LISTEN/NOTIFY instead of polling.

Every transaction that appends to the event log notifies channel
``provisioner_events`` with the node's name (``pg_notify`` runs in the
transaction, so the notification goes out on commit, never for a rollback). A
waiter (the pipeline waiting for a node's boot script, kickstart or callback,
which the HTTP workers record, perhaps on another host) wakes as soon as any
event is committed instead of at its next poll. SQLite has no notifications:
there ``wait`` sleeps its full time, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

CHANNEL = "provisioner_events"


def notify_on_events(sessions: sessionmaker[Session], event_table: str) -> None:
    """Make every flush that adds rows to ``event_table`` notify, once per node."""

    def after_flush(session: Session, _context: Any) -> None:
        nodes = {
            getattr(obj, "node", None)
            for obj in session.new
            if getattr(obj, "__tablename__", None) == event_table
        }
        notify_nodes(session, {n for n in nodes if n})

    event.listen(sessions, "after_flush", after_flush)


def notify_nodes(session: Session, nodes: set[str]) -> None:
    """Notify once per node, in the session's transaction (sent on commit). Bulk
    inserts bypass the flush hook above, so their writers call this themselves."""
    for node in sorted(nodes):
        session.connection().execute(text("SELECT pg_notify(:channel, :node)"),
                        {"channel": CHANNEL, "node": node})  # fmt: skip


class Changes:
    """``wait(seconds)``: sleep until an event is committed anywhere, or the time is up."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if engine.dialect.name == "postgresql"
            else None
        )
        self._seen = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def live(self) -> bool:
        """Notifications reach us (PostgreSQL); otherwise waits are plain sleeps."""
        return self._conninfo is not None

    def wait(self, seconds: float) -> None:
        if self._conninfo is None:
            time.sleep(seconds)
            return
        self._start()
        with self._seen:
            start = self._generation
            self._seen.wait_for(lambda: self._generation != start, timeout=seconds)

    def close(self) -> None:
        self._closed.set()

    def _start(self) -> None:
        with self._seen:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="listen", daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        import psycopg

        assert self._conninfo is not None
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._closed.is_set():
                        got = sum(1 for _ in conn.notifies(timeout=1.0))
                        if got:
                            with self._seen:
                                self._generation += 1
                                self._seen.notify_all()
            except psycopg.Error as exc:  # the database away: wake waiters, retry shortly
                log.warning("state: listening for events failed (%s); retrying", exc)
                with self._seen:
                    self._generation += 1
                    self._seen.notify_all()
                self._closed.wait(1.0)
