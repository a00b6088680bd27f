"""The state store: transactions, illegal moves, reservations, persistence.

Every test runs on SQLite and on a real PostgreSQL (``db_url`` in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from provisioner.errors import (
    DeploySpent,
    IllegalTransition,
    NodeNotEnrolled,
    NodeReserved,
    StateError,
)
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import Store


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    s = open_store()
    s.enroll("ctl1")
    return s


def test_transition_updates_state_and_appends_one_event(store: Store) -> None:
    store.transition("ctl1", "manage", actor="test")
    rec = store.transition("ctl1", "provision", actor="test")
    assert rec.state is NodeState.PROVISIONING
    events = store.events("ctl1")
    assert [(e.event, e.from_state, e.to_state) for e in events] == [
        ("enroll", None, "enrolled"),
        ("manage", "enrolled", "ready"),
        ("provision", "ready", "provisioning"),
    ]


def test_illegal_transition_raises_and_changes_nothing(store: Store) -> None:
    before = store.events("ctl1")
    with pytest.raises(IllegalTransition, match="node ctl1: cannot 'activate' while enrolled"):
        store.transition("ctl1", "activate")
    assert store.get("ctl1").state is NodeState.ENROLLED
    assert store.events("ctl1") == before


def test_failure_keeps_its_reason_until_the_next_move(store: Store) -> None:
    store.transition("ctl1", "manage")
    store.transition("ctl1", "provision")
    with pytest.raises(StateError, match="needs a reason"):
        store.transition("ctl1", "fail")
    rec = store.transition("ctl1", "fail", reason="BMC 127.0.0.1:6230 unreachable")
    assert rec.state is NodeState.PROVISIONING_FAILED
    assert rec.reason == "BMC 127.0.0.1:6230 unreachable"
    assert store.events("ctl1")[-1].message == "BMC 127.0.0.1:6230 unreachable"
    assert store.transition("ctl1", "reprovision").reason is None


def test_unknown_node_is_a_clear_error(store: Store) -> None:
    with pytest.raises(NodeNotEnrolled, match="node nope"):
        store.transition("nope", "manage")


def test_event_log_is_append_only_in_the_database(store: Store) -> None:
    for sql in ("UPDATE events SET message = 'rewritten'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert [e.message for e in store.events("ctl1")] == ["enrolled"]


def test_reservation_held_by_one_operation_blocks_a_second(store: Store) -> None:
    token = store.reserve("ctl1", "provision", owner="op-1")
    with pytest.raises(NodeReserved, match="reserved by op-1 for 'provision'"):
        store.reserve("ctl1", "power off", owner="op-2")
    store.release("ctl1", token)
    store.release("ctl1", store.reserve("ctl1", "power off", owner="op-2"))


def test_only_one_of_many_concurrent_reservers_wins(db_url: str) -> None:
    Store(db_url).enroll("ctl1")
    winners: list[str] = []
    losers: list[str] = []

    def attempt(i: int) -> None:
        s = Store(db_url)
        try:
            s.reserve("ctl1", "provision", owner=f"op-{i}")
            winners.append(f"op-{i}")
        except NodeReserved:
            losers.append(f"op-{i}")
        finally:
            s.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert len(losers) == 7


def test_reservation_of_another_process_blocks_until_it_exits(db_url: str) -> None:
    Store(db_url).enroll("ctl1")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from provisioner.state.store import Store\n"
            f"s = Store({db_url!r}); s.reserve('ctl1', 'rebuild', owner='holder')\n"
            "print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = Store(db_url)
        with pytest.raises(NodeReserved, match="holder"):
            store.reserve("ctl1", "provision", owner="second")
    finally:
        holder.kill()  # dies without releasing: like kill -9 of a daemon
        holder.wait()
    # its process is gone, so the reservation is stale and is taken over, with a note
    store.reserve("ctl1", "provision", owner="second")
    assert "took over stale reservation of holder" in store.events("ctl1")[-1].message


def test_expired_reservation_is_taken_over(store: Store) -> None:
    store.reserve("ctl1", "provision", owner="op-1", ttl=timedelta(seconds=-1))
    store.reserve("ctl1", "provision", owner="op-2")
    assert store.reservation("ctl1").owner == "op-2"


def test_event_log_survives_a_process_restart(db_url: str) -> None:
    script = (
        "from provisioner.state.store import Store\n"
        f"s = Store({db_url!r})\n"
        "s.enroll('ctl1'); s.transition('ctl1', 'manage'); s.transition('ctl1', 'provision')\n"
        "s.add_event('ctl1', 'power cycled through the BMC')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    store = Store(db_url)
    assert store.get("ctl1").state is NodeState.PROVISIONING
    assert [e.message for e in store.events("ctl1")][-1] == "power cycled through the BMC"
    assert len(store.events("ctl1")) == 4


def test_build_mode_token_is_per_node_per_deploy_and_spent(store: Store, tmp_path: Path) -> None:
    from provisioner.state.tokens import DeployTokens

    tokens = DeployTokens.from_state_dir(tmp_path / "keys")
    assert (tmp_path / "keys" / "deploy-token.key").stat().st_mode & 0o077 == 0
    store.enroll("ctl2")
    store.start_build_mode("ctl1")
    store.start_build_mode("ctl2")
    first = tokens.token_for(store.get("ctl1"))
    assert first and tokens.verify(store.get("ctl1"), first)
    assert not tokens.verify(store.get("ctl2"), first)  # another node's token
    store.start_build_mode("ctl1")  # a new deploy: the old token dies
    assert not tokens.verify(store.get("ctl1"), first)
    second = tokens.token_for(store.get("ctl1"))
    assert second and tokens.verify(store.get("ctl1"), second)
    store.end_build_mode("ctl1")  # install finished: spent
    assert not tokens.verify(store.get("ctl1"), second)
    assert tokens.token_for(store.get("ctl1")) is None
    assert "deploy_id" not in store.get("ctl2").as_dict()


def test_typed_events_are_found_by_kind_and_event_name(store: Store) -> None:
    mark = store.add_event("ctl1", "power cycling", EventKind.POWER, "test", event="cycle")
    store.add_event("ctl1", "boot script served (local disk)", EventKind.BOOT_SCRIPT, event="local")
    store.add_event("ctl1", "boot script served (install)", EventKind.BOOT_SCRIPT, event="install")
    store.add_event("ctl1", "kickstart served", EventKind.KICKSTART_SERVED)
    found = store.events_after("ctl1", mark, kind=EventKind.BOOT_SCRIPT, event="install")
    assert [(e.kind, e.event, e.message) for e in found] == [
        (EventKind.BOOT_SCRIPT, "install", "boot script served (install)")
    ]
    both = store.events_after("ctl1", mark, kind=(EventKind.BOOT_SCRIPT, EventKind.CALLBACK))
    assert [e.event for e in both] == ["local", "install"]
    assert store.events_after("ctl1", 0, kind=EventKind.POWER)[0].id == mark


def test_an_event_kind_of_an_older_version_reads_as_a_note(store: Store) -> None:
    with store.engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO events (node, at, kind, message, actor) "
                "VALUES ('ctl1', '2024-01-01 00:00:00', 'boot', 'kickstart served', 'old')"
            )
        )
    last = store.events("ctl1")[-1]
    assert (last.kind, last.message) == (EventKind.NOTE, "kickstart served")


def test_an_event_spends_the_deploy_once(store: Store) -> None:
    for event in ("manage", "provision", "boot", "install"):
        store.transition("ctl1", event, actor="test")
    deploy = store.start_build_mode("ctl1")
    store.record_and_end_build(
        "ctl1", deploy, EventKind.CALLBACK, "done", event="installed", why="install complete"
    )
    rec = store.get("ctl1")
    assert not rec.build_mode and rec.deploy_id is None
    before = store.events("ctl1")
    assert [(e.kind, e.event) for e in before[-2:]] == [
        (EventKind.CALLBACK, "installed"),
        (EventKind.BUILD, "off"),
    ]
    with pytest.raises(DeploySpent, match="node ctl1: its deploy is already spent"):
        store.record_and_end_build("ctl1", deploy, EventKind.CALLBACK, "again", event="installed")
    assert store.events("ctl1") == before  # nothing written by the replay
    newer = store.start_build_mode("ctl1")
    with pytest.raises(DeploySpent):  # an old deploy's id never spends the new one
        store.record_and_end_build("ctl1", deploy, EventKind.CALLBACK, "old", event="failed")
    assert store.get("ctl1").deploy_id == newer


def test_many_writers_racing_on_one_node_move_it_once(db_url: str) -> None:
    """Sixteen stores (connections) take READY -> PROVISIONING at the same moment:
    one wins, every other one is refused, and the log holds the move once."""
    first = Store(db_url)
    first.enroll("ctl1")
    first.transition("ctl1", "manage")
    stores = [Store(db_url) for _ in range(16)]
    start = threading.Barrier(len(stores))
    won: list[int] = []
    refused: list[str] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            stores[i].transition("ctl1", "provision", actor=f"writer-{i}")
            won.append(i)
        except StateError as exc:  # IllegalTransition or ConcurrentUpdate
            refused.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(won) == 1 and len(refused) == len(stores) - 1
    moves = [e for e in first.events("ctl1") if e.event == "provision"]
    assert [m.actor for m in moves] == [f"writer-{won[0]}"]
    assert first.get("ctl1").state is NodeState.PROVISIONING
    first.close()


def test_a_stale_reservation_is_taken_over_by_one_of_many(db_url: str) -> None:
    """A dead holder's reservation, many takers at once: one takes it, one note says so."""
    first = Store(db_url)
    first.enroll("ctl1")
    first.reserve("ctl1", "provision", owner="dead", ttl=timedelta(seconds=-1))
    stores = [Store(db_url) for _ in range(12)]
    start = threading.Barrier(len(stores))
    won: list[int] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            stores[i].reserve("ctl1", "resume", owner=f"taker-{i}")
            won.append(i)
        except NodeReserved:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(won) == 1
    held = first.reservation("ctl1")
    assert held is not None and held.owner == f"taker-{won[0]}"
    notes = [e.message for e in first.events("ctl1") if "took over" in e.message]
    assert len(notes) == 1 and "stale reservation of dead" in notes[0]
    first.close()
