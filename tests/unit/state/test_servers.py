"""Boot server registration and heartbeats, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from provisioner.state.servers import Servers
from provisioner.state.store import Store


def test_a_silent_or_stopped_server_is_dead_and_its_networks_unserved(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(server_timeout=timedelta(seconds=0.5))
    servers = Servers(store)
    servers.register("a", ["main", "rack2"], "http://127.0.0.1:8081")
    servers.register("b", ["rack2"], "http://127.0.0.1:8091")
    assert servers.serving() == {"main": ["a"], "rack2": ["a", "b"]}
    time.sleep(0.7)
    assert servers.heartbeat("b")
    assert servers.serving() == {"rack2": ["b"]}  # a fell silent
    servers.stop("b")
    assert servers.serving() == {}
    listed = {s.name: s.as_dict() for s in servers.all()}
    assert (listed["a"]["alive"], listed["b"]["stopped"]) == (False, True)
    assert listed["a"]["networks"] == ["main", "rack2"]
    assert not servers.heartbeat("nobody")


def test_a_restarted_server_gets_back_what_its_earlier_run_held(
    open_store: Callable[..., Store],
) -> None:
    """Same name, new life: the old run's reservations go (with a note), not after a timeout."""
    old, new = open_store(), open_store()
    old.enroll("ctl1")
    old.server = "a"
    Servers(old).register("a", ["main"], "http://127.0.0.1:8081")
    old.reserve("ctl1", "provision", owner="a")
    # the same run registering again (its row went missing) keeps what it drives
    assert Servers(old).register("a", ["main"], "http://127.0.0.1:8081", starting=False) == []
    assert old.reservation("ctl1") is not None
    new.server = "a"
    assert Servers(new).register("a", ["main"], "http://127.0.0.1:8081") == ["ctl1"]
    assert new.reservation("ctl1") is None
    assert "earlier run released" in new.events("ctl1")[-1].message
    new.reserve("ctl1", "resume", owner="a")
