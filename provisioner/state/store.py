"""The node state store: nodes, their append-only event log, and reservations.

SQLite by default (a file under the state directory), through SQLAlchemy so a
PostgreSQL URL can replace it. Every state transition is one transaction that
updates the node and appends an event; the update is conditional on the state
read, so two writers can never both move a node.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from provisioner.errors import (
    ConcurrentUpdate,
    DeploySpent,
    IllegalTransition,
    NodeNotEnrolled,
    NodeReserved,
    SchemaOutdated,
    StateError,
)
from provisioner.settings import StateDir
from provisioner.state import schema
from provisioner.state.beacon import ChangeBeacon
from provisioner.state.changes import Changes, notify_nodes, notify_on_events
from provisioner.state.machine import (
    EVENTS_WITH_REASON,
    EventKind,
    NodeState,
    allowed_events,
    target,
)
from provisioner.state.privacy import private_file

log = logging.getLogger(__name__)

DEFAULT_RESERVATION_TTL = timedelta(minutes=30)
#: a serve instance that has not heartbeaten for this long is taken for dead
DEFAULT_SERVER_TIMEOUT = timedelta(seconds=30)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class NodeRow(Base):
    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    state_since: Mapped[datetime] = mapped_column(DateTime)
    # Build mode: while on, the node's network boot goes to the installer. The
    # deploy id names this deployment; its token is derived from it (tokens.py)
    # and dies with it.
    build_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    deploy_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    deploy_started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(ForeignKey("nodes.name"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16))  # an EventKind value
    # machine-readable name: the transition's, the boot script's, the callback's status...
    event: Mapped[str | None] = mapped_column(String(32), nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="")


class ReservationRow(Base):
    __tablename__ = "reservations"

    node: Mapped[str] = mapped_column(ForeignKey("nodes.name"), primary_key=True)
    token: Mapped[str] = mapped_column(String(36))
    owner: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # the serve instance whose pipeline holds it (None: a CLI run or a single daemon)
    server: Mapped[str | None] = mapped_column(String(128), nullable=True)


class ServerRow(Base):
    """A ``serve`` instance sharing this database (state/servers.py keeps the rows)."""

    __tablename__ = "servers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    networks: Mapped[str] = mapped_column(Text)  # comma-separated network names
    url: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    #: seconds of silence after which it is dead (it says so itself, from its heartbeat)
    silent_after: Mapped[float] = mapped_column(Float)
    stopped: Mapped[bool] = mapped_column(Boolean)


# The event log is append-only: the database itself refuses edits (a trigger made by
# the baseline revision, state/migrations/versions/0001_baseline.py).


@dataclass(frozen=True)
class NodeRecord:
    name: str
    state: NodeState
    reason: str | None
    step: str | None
    created_at: datetime
    updated_at: datetime
    state_since: datetime
    build_mode: bool = False
    deploy_id: str | None = None
    deploy_started_at: datetime | None = None

    @classmethod
    def of(cls, row: NodeRow) -> NodeRecord:
        return cls(
            row.name,
            NodeState(row.state),
            row.reason,
            row.step,
            row.created_at,
            row.updated_at,
            row.state_since,
            bool(row.build_mode),
            row.deploy_id,
            row.deploy_started_at,
        )

    def as_dict(self) -> dict[str, Any]:
        """Safe to print: the deploy id is left out (the token derives from it)."""
        return {
            "build_mode": self.build_mode,
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
            "step": self.step,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "state_since": _iso(self.state_since),
        }


@dataclass(frozen=True)
class EventRecord:
    id: int
    node: str
    at: datetime
    kind: EventKind
    event: str | None
    from_state: str | None
    to_state: str | None
    message: str
    actor: str

    @classmethod
    def of(cls, row: EventRow) -> EventRecord:
        return cls(
            row.id,
            row.node,
            row.at,
            EventKind(row.kind),
            row.event,
            row.from_state,
            row.to_state,
            row.message,
            row.actor,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node,
            "at": _iso(self.at),
            "kind": self.kind.value,
            "event": self.event,
            "from": self.from_state,
            "to": self.to_state,
            "message": self.message,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class Reservation:
    node: str
    token: str
    owner: str
    host: str
    pid: int
    operation: str
    acquired_at: datetime
    expires_at: datetime
    server: str | None = None

    @classmethod
    def of(cls, row: ReservationRow) -> Reservation:
        return cls(
            row.node,
            row.token,
            row.owner,
            row.host,
            row.pid,
            row.operation,
            row.acquired_at,
            row.expires_at,
            row.server,
        )

    def is_stale(self, now: datetime, server_alive: bool = True) -> bool:
        """Expired, held by a process on this host that no longer exists, or held by a
        serve instance that stopped heartbeating (``server_alive`` False)."""
        if now >= self.expires_at or (self.server is not None and not server_alive):
            return True
        return self.host == socket.gethostname() and not _pid_alive(self.pid)

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "operation": self.operation,
            "acquired_at": _iso(self.acquired_at),
            "expires_at": _iso(self.expires_at),
            "server": self.server,
        }


def _build_off_event(name: str, at: datetime, actor: str, why: str) -> EventRow:
    return EventRow(
        node=name,
        at=at,
        kind=EventKind.BUILD.value,
        event="off",
        actor=actor,
        message="build mode off: boots from local disk" + (f" ({why})" if why else ""),
    )


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, says when a transaction begins (_sqlite_begin)
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    """A write transaction takes SQLite's write lock at BEGIN (IMMEDIATE).

    A deferred transaction that reads, then writes after another writer committed,
    fails at once with SQLITE_BUSY (its snapshot is stale; busy_timeout does not
    apply): two racing callbacks got a 500. Reads stay deferred, so they never wait.
    """
    immediate = conn.get_execution_options().get(_WRITE_TX, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_WRITE_TX = schema.WRITE_TX


def server_alive(row: ServerRow, now: datetime) -> bool:
    """A serve instance is alive while it heartbeats as often as it said and has not stopped."""
    return not row.stopped and (now - row.heartbeat_at).total_seconds() < row.silent_after


def _locked(s: Session, name: str) -> NodeRow:
    """The node's row, locked until the transaction ends (SELECT ... FOR UPDATE).

    On PostgreSQL a second writer of the same node waits here and then reads the
    first one's result, instead of both deciding from the same old state; SQLite
    has one writer at a time already (BEGIN IMMEDIATE) and ignores FOR UPDATE.
    """
    row = s.get(NodeRow, name, with_for_update=True, populate_existing=True)
    if row is None:
        raise NodeNotEnrolled(name)
    return row


def sqlite_url(state_dir: Path) -> str:
    return StateDir(state_dir).db_url


def make_engine(url: str) -> Engine:
    """An engine for the store's database, SQLite's write locking set up (_sqlite_begin)."""
    # a server database may restart or fail over under us: test a pooled connection first
    engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def store_url(state_dir: Path, url: str | None = None) -> str:
    """``url``, or the state directory's SQLite file (made private first)."""
    if url is None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_file(StateDir(state_dir).db)  # SQLite's -wal and -shm take its mode
        url = sqlite_url(state_dir)
    return url


class Store:
    """All reads and writes of node state go through here."""

    def __init__(self, url: str, server_timeout: timedelta = DEFAULT_SERVER_TIMEOUT) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._check_schema()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: bumped after each write that may change node rows (state/beacon.py); a
        #: SQLite store's readers in other processes watch it
        self.beacon: ChangeBeacon | None = None
        if self.state_dir is not None:
            try:
                self.beacon = ChangeBeacon(StateDir(self.state_dir).nodes_changed)
            except OSError as exc:
                log.debug("no change beacon in %s: %s", self.state_dir, exc)
        if self.engine.dialect.name == "postgresql":
            notify_on_events(self._sessions, EventRow.__tablename__)
        #: wakes on committed events (PostgreSQL LISTEN/NOTIFY); a sleep on SQLite
        self.changes = Changes(self.engine)
        #: the serve instance this store works for (recorded on its reservations)
        self.server: str | None = None
        #: the silence after which this store's instance is dead (declared when registering)
        self.server_timeout = server_timeout

    def _check_schema(self) -> None:
        """SQLite (one host) upgrades itself; a shared database must be upgraded on purpose."""
        found = schema.current(self.engine)
        if found == schema.head():
            return
        if self.engine.dialect.name == "sqlite":
            before, after = schema.upgrade(self.engine)
            if before != after:
                log.info("state: schema upgraded from %s to %s", before or "none", after)
            return
        self.engine.dispose()
        raise SchemaOutdated(found, schema.head())

    @classmethod
    def open(cls, state_dir: Path, url: str | None = None) -> Store:
        return cls(store_url(state_dir, url))

    def close(self) -> None:
        self.changes.close()
        self.engine.dispose()
        if self.beacon is not None:
            self.beacon.close()
            self.beacon = None

    @property
    def state_dir(self) -> Path | None:
        """The folder of a SQLite store (the state directory); None for a server database."""
        prefix = "sqlite:///"
        return Path(self.url[len(prefix) :]).parent if self.url.startswith(prefix) else None

    @contextmanager
    def _tx(self, touches_nodes: bool = True) -> Iterator[Session]:
        with self._sessions.begin() as session:
            session.connection(execution_options={_WRITE_TX: True})  # BEGIN IMMEDIATE
            yield session
        if touches_nodes and self.beacon is not None:
            self.beacon.bump()  # committed: readers of node rows look again

    def writing(self) -> AbstractContextManager[Session]:
        """A write transaction for the state package's other tables (state/discovered.py)."""
        return self._tx()

    def reading(self) -> AbstractContextManager[Session]:
        return self._sessions.begin()

    # ---- nodes -------------------------------------------------------------
    def enroll(self, name: str, actor: str = "", message: str = "enrolled") -> bool:
        """Record a node as ENROLLED. Returns False if it was already known."""
        now = utcnow()
        try:
            with self._tx() as s:
                if s.get(NodeRow, name) is not None:
                    return False
                s.add(
                    NodeRow(
                        name=name,
                        state=NodeState.ENROLLED.value,
                        reason=None,
                        step=None,
                        created_at=now,
                        updated_at=now,
                        state_since=now,
                    )
                )
                s.flush()
                s.add(
                    EventRow(
                        node=name,
                        at=now,
                        kind=EventKind.TRANSITION.value,
                        event="enroll",
                        from_state=None,
                        to_state=NodeState.ENROLLED.value,
                        message=message,
                        actor=actor,
                    )
                )
        except IntegrityError:
            return False  # enrolled concurrently by someone else
        log.info("node %s: enrolled", name)
        return True

    def get(self, name: str) -> NodeRecord:
        with self._sessions() as s:
            row = s.get(NodeRow, name)
            if row is None:
                raise NodeNotEnrolled(name)
            return NodeRecord.of(row)

    def find(self, name: str) -> NodeRecord | None:
        with self._sessions() as s:
            row = s.get(NodeRow, name)
            return NodeRecord.of(row) if row else None

    def all(self) -> list[NodeRecord]:
        with self._sessions() as s:
            return [NodeRecord.of(r) for r in s.scalars(select(NodeRow).order_by(NodeRow.name))]

    def transition(
        self,
        name: str,
        event_name: str,
        reason: str | None = None,
        actor: str = "",
        step: str | None = None,
    ) -> NodeRecord:
        """Move a node by ``event_name`` in one transaction that also appends the event."""
        if event_name in EVENTS_WITH_REASON and not reason:
            raise StateError(f"node {name}: '{event_name}' needs a reason")
        now = utcnow()
        with self._tx() as s:
            row = _locked(s, name)
            current = NodeState(row.state)
            to = target(current, event_name)
            if to is None:
                raise IllegalTransition(name, current.value, event_name, allowed_events(current))
            # the row is locked: what it holds after the update is known without reading it
            moved = replace(
                NodeRecord.of(row),
                state=to,
                reason=reason if to.is_failed else None,
                step=step,
                updated_at=now,
                state_since=now,
            )
            result = s.execute(
                update(NodeRow)
                .where(NodeRow.name == name, NodeRow.state == current.value)
                .values(
                    state=to.value,
                    reason=reason if to.is_failed else None,
                    step=step,
                    updated_at=now,
                    state_since=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                found = s.scalar(select(NodeRow.state).where(NodeRow.name == name))
                raise ConcurrentUpdate(name, current.value, str(found))
            s.add(
                EventRow(
                    node=name,
                    at=now,
                    kind=EventKind.TRANSITION.value,
                    event=event_name,
                    from_state=current.value,
                    to_state=to.value,
                    message=reason or "",
                    actor=actor,
                )
            )
        if to.is_failed:
            log.warning("node %s: %s -> %s: %s", name, current.value, to.value, reason)
        else:
            log.info("node %s: %s -> %s", name, current.value, to.value)
        return moved

    def set_step(self, name: str, step: str | None, actor: str = "") -> None:
        """Record the pipeline step a node is in (for resuming after a crash)."""
        with self._tx() as s:
            row = _locked(s, name)
            row.step, row.updated_at = step, utcnow()

    # ---- build mode ----------------------------------------------------------
    def start_build_mode(self, name: str, actor: str = "") -> str:
        """Build mode on with a fresh deploy id (any earlier deploy's token dies)."""
        deploy_id = uuid.uuid4().hex
        now = utcnow()
        with self._tx() as s:
            row = _locked(s, name)
            row.build_mode, row.deploy_id, row.deploy_started_at = True, deploy_id, now
            row.updated_at = now
            s.add(
                EventRow(
                    node=name,
                    at=now,
                    kind=EventKind.BUILD.value,
                    event="on",
                    actor=actor,
                    message="build mode on: next network boot installs",
                )
            )
        log.info("node %s: build mode on", name)
        return deploy_id

    def end_build_mode(self, name: str, actor: str = "", why: str = "") -> None:
        """Build mode off and the deploy's token spent: the next boot is from disk."""
        now = utcnow()
        with self._tx() as s:
            row = _locked(s, name)
            was_on = row.build_mode
            row.build_mode, row.deploy_id, row.deploy_started_at = False, None, None
            row.updated_at = now
            if was_on:
                s.add(_build_off_event(name, now, actor, why))
        log.info("node %s: build mode off", name)

    def record_and_end_build(
        self,
        name: str,
        deploy_id: str,
        kind: EventKind,
        message: str,
        actor: str = "",
        event: str | None = None,
        why: str = "",
    ) -> int:
        """Append an event and spend deploy ``deploy_id`` (build mode off), in one transaction.

        Conditional on ``deploy_id`` still being the node's live deploy: a second
        caller with the same token (a replay, or two requests racing) gets
        DeploySpent and nothing is written. Returns the event's id.
        """
        now = utcnow()
        with self._tx() as s:
            _locked(s, name)
            result = s.execute(
                update(NodeRow)
                .where(
                    NodeRow.name == name,
                    NodeRow.deploy_id == deploy_id,
                    NodeRow.build_mode.is_(True),
                )
                .values(build_mode=False, deploy_id=None, deploy_started_at=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise DeploySpent(name)
            row = EventRow(
                node=name, at=now, kind=kind.value, event=event, message=message, actor=actor
            )
            s.add(row)
            s.add(_build_off_event(name, now, actor, why))
            s.flush()
            event_id = row.id
        log.info("node %s: build mode off (%s)", name, why or kind.value)
        return event_id

    # ---- events ------------------------------------------------------------
    def add_event(
        self,
        name: str,
        message: str,
        kind: EventKind = EventKind.NOTE,
        actor: str = "",
        event: str | None = None,
    ) -> int:
        """Append an event to the node's log; returns its id (ids grow with time)."""
        with self._tx(touches_nodes=False) as s:
            if s.get(NodeRow, name) is None:
                raise NodeNotEnrolled(name)
            row = EventRow(
                node=name,
                at=utcnow(),
                kind=EventKind(kind).value,
                event=event,
                message=message,
                actor=actor,
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def add_events(self, events: Collection[tuple[str, str, EventKind, str, str | None]]) -> int:
        """Append many events in one transaction (the boot server's event writer):
        each is (node, message, kind, actor, event name). Events of nodes that are
        not enrolled are skipped; returns how many were written."""
        now = utcnow()
        with self._tx(touches_nodes=False) as s:
            names = {name for name, *_ in events}
            known = set(s.scalars(select(NodeRow.name).where(NodeRow.name.in_(names))))
            rows = [
                {
                    "node": name,
                    "at": now,
                    "kind": EventKind(kind).value,
                    "event": event_name,
                    "message": message,
                    "actor": actor,
                }
                for name, message, kind, actor, event_name in events
                if name in known
            ]
            if rows:  # one executemany, no ORM objects: ~10x faster than add_all
                s.execute(insert(EventRow), rows)
                if self.changes.live:  # PostgreSQL: wake the pipeline's waits
                    notify_nodes(s, {str(row["node"]) for row in rows})
        return len(rows)

    def changed_since(self, since: datetime) -> list[NodeRecord]:
        """Nodes whose row changed at or after ``since`` (every write sets updated_at)."""
        with self._sessions() as s:
            query = select(NodeRow).where(NodeRow.updated_at >= since)
            return [NodeRecord.of(r) for r in s.scalars(query)]

    def last_event_id(self, name: str) -> int:
        with self._sessions() as s:
            found = s.scalar(
                select(EventRow.id).where(EventRow.node == name).order_by(EventRow.id.desc())
            )
            return int(found or 0)

    def events_after(
        self,
        name: str,
        after_id: int,
        kind: EventKind | Collection[EventKind] | None = None,
        event: str | None = None,
    ) -> list[EventRecord]:
        """Events of a node newer than ``after_id``, oldest first; optionally only
        those of a kind (or kinds) and with an event name."""
        with self._sessions() as s:
            query = select(EventRow).where(EventRow.node == name, EventRow.id > after_id)
            if isinstance(kind, EventKind):
                query = query.where(EventRow.kind == kind.value)
            elif kind is not None:
                query = query.where(EventRow.kind.in_([k.value for k in kind]))
            if event is not None:
                query = query.where(EventRow.event == event)
            return [EventRecord.of(r) for r in s.scalars(query.order_by(EventRow.id))]

    def last_events(self) -> dict[str, EventRecord]:
        """The newest event of every node, in one query (the dashboard's table)."""
        with self._sessions() as s:
            newest = select(func.max(EventRow.id)).group_by(EventRow.node)
            rows = s.scalars(select(EventRow).where(EventRow.id.in_(newest)))
            return {r.node: EventRecord.of(r) for r in rows}

    def events(self, name: str, limit: int | None = None) -> list[EventRecord]:
        """Events of a node, oldest first; with ``limit``, only the newest ``limit``."""
        with self._sessions() as s:
            if s.get(NodeRow, name) is None:
                raise NodeNotEnrolled(name)
            query = select(EventRow).where(EventRow.node == name).order_by(EventRow.id.desc())
            if limit is not None:
                query = query.limit(limit)
            return [EventRecord.of(r) for r in reversed(list(s.scalars(query)))]

    # ---- reservations ------------------------------------------------------
    def reservation(self, name: str) -> Reservation | None:
        with self._sessions() as s:
            row = s.get(ReservationRow, name)
            return Reservation.of(row) if row else None

    def reserve(
        self,
        name: str,
        operation: str,
        owner: str = "",
        ttl: timedelta = DEFAULT_RESERVATION_TTL,
    ) -> str:
        """Take the node's reservation; returns a token for release/refresh.

        Raises NodeReserved if someone else holds a live reservation. A stale one
        (expired, or its process on this host is gone) is taken over, and the
        takeover is recorded in the node's event log.
        """
        token = str(uuid.uuid4())
        owner = owner or f"pid {os.getpid()}"
        now = utcnow()
        with self._tx() as s:
            _locked(s, name)  # reservers of one node queue here: the check and the take are one
            row = s.get(ReservationRow, name, populate_existing=True)
            if row is not None:
                held = Reservation.of(row)
                if not held.is_stale(now, self._server_alive(s, held.server, now)):
                    raise NodeReserved(name, held.owner, held.operation, _iso(held.acquired_at))
                s.delete(row)
                s.flush()
                s.add(
                    EventRow(
                        node=name,
                        at=now,
                        kind=EventKind.NOTE.value,
                        actor=owner,
                        message=f"took over stale reservation of {held.owner} "
                        f"('{held.operation}' since {_iso(held.acquired_at)}"
                        + (f", server {held.server}" if held.server else "")
                        + ")",
                    )
                )
            s.add(
                ReservationRow(
                    node=name,
                    token=token,
                    owner=owner,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    operation=operation,
                    acquired_at=now,
                    expires_at=now + ttl,
                    server=self.server,
                )
            )
        return token

    def takeable(self, names: Collection[str]) -> list[str]:
        """Those of ``names`` nobody holds: no reservation, or a stale one (its holder
        expired, died on this host, or its server stopped heartbeating)."""
        now = utcnow()
        with self._sessions() as s:
            held = {
                r.node: Reservation.of(r)
                for r in s.scalars(select(ReservationRow).where(ReservationRow.node.in_(names)))
            }
            return [
                n
                for n in names
                if n not in held
                or held[n].is_stale(now, self._server_alive(s, held[n].server, now))
            ]

    def _server_alive(self, s: Session, server: str | None, now: datetime) -> bool:
        """A serve instance counts as alive while it heartbeats and has not stopped."""
        if server is None:
            return True
        row = s.get(ServerRow, server)
        return row is not None and server_alive(row, now)

    def refresh(self, name: str, token: str, ttl: timedelta = DEFAULT_RESERVATION_TTL) -> None:
        with self._tx() as s:
            result = s.execute(
                update(ReservationRow)
                .where(ReservationRow.node == name, ReservationRow.token == token)
                .values(expires_at=utcnow() + ttl)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StateError(f"node {name}: reservation lost")

    def release(self, name: str, token: str) -> None:
        with self._tx() as s:
            s.execute(
                delete(ReservationRow).where(
                    ReservationRow.node == name, ReservationRow.token == token
                )
            )

    def force_release(self, name: str, actor: str = "") -> Reservation | None:
        with self._tx() as s:
            s.get(NodeRow, name, with_for_update=True)  # serialised with reserve()
            row = s.get(ReservationRow, name, populate_existing=True)
            if row is None:
                return None
            held = Reservation.of(row)
            s.delete(row)
            s.add(
                EventRow(
                    node=name,
                    at=utcnow(),
                    kind=EventKind.NOTE.value,
                    actor=actor,
                    message=f"reservation of {held.owner} ('{held.operation}') released by force",
                )
            )
            return held

    @contextmanager
    def reserved(self, name: str, operation: str, owner: str = "") -> Iterator[str]:
        token = self.reserve(name, operation, owner)
        try:
            yield token
        finally:
            self.release(name, token)
