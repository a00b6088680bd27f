"""Live progress through PostgreSQL's LISTEN/NOTIFY: a waiter wakes on a committed event."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from provisioner.errors import IllegalTransition
from provisioner.state.store import Store


def _timed_wait(store: Store, seconds: float) -> Callable[[], float]:
    """Start ``store.changes.wait(seconds)`` in a thread; the result says how long it took."""
    took: list[float] = []

    def run() -> None:
        start = time.monotonic()
        store.changes.wait(seconds)
        took.append(time.monotonic() - start)

    thread = threading.Thread(target=run)
    thread.start()

    def result() -> float:
        thread.join(seconds + 5)
        return took[0]

    return result


def test_a_committed_event_wakes_a_waiter_on_another_connection(
    open_store: Callable[..., Store], db_url: str
) -> None:
    watcher, writer = open_store(), open_store()
    writer.enroll("ctl1")
    if not watcher.changes.live:  # SQLite: no notifications, a plain sleep
        start = time.monotonic()
        watcher.changes.wait(0.3)
        assert time.monotonic() - start >= 0.3
        return
    watcher.changes.wait(0.5)  # the listener is up
    # a refused move writes nothing and wakes nobody
    waited = _timed_wait(watcher, 2.0)
    time.sleep(0.3)
    with pytest.raises(IllegalTransition):
        writer.transition("ctl1", "activate")
    assert waited() >= 1.9
    # a committed event wakes the waiter at once, not at its timeout
    waited = _timed_wait(watcher, 20.0)
    time.sleep(0.3)
    writer.add_event("ctl1", "boot script served")
    assert waited() < 5.0
