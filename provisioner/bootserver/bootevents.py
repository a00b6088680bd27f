"""Boot script events written off the request path, in batches.

A boot script must come back in milliseconds, but a store write is a
transaction with an fsync (about 2 ms alone, far more when many request threads
contend for the SQLite write lock). Each HTTP worker process therefore hands
its events to one writer thread, which writes whatever is queued in one
transaction (Store.add_events): at 50 concurrent clients that is hundreds of
events a commit instead of one, so the writer keeps up and nothing is dropped.
The pipeline sees an event a few milliseconds after the script went out.

A request never drops its event: when the queue is full the request waits for
room (the store is that far behind), and pending events are flushed when the
worker exits. Each one is a typed BOOT_SCRIPT event whose event name is the
script's kind (``BootScript``: install, local, discovery), which is what the
pipeline waits for.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time

from provisioner.errors import StateError
from provisioner.state.machine import BootScript, EventKind
from provisioner.state.store import Store

log = logging.getLogger(__name__)

_STOP = None
#: events written in one transaction at most
BATCH = 1000
#: tries of one batch before its events are given up (logged as an error)
RETRIES = 5


class BootEventWriter:
    def __init__(self, store: Store, max_pending: int = 100_000) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[str, BootScript, str] | None] = queue.Queue(max_pending)
        self._thread = threading.Thread(target=self._run, name="boot-events", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, node: str, kind: BootScript, message: str) -> None:
        """Queue a BOOT_SCRIPT event named ``kind`` for ``node`` (waits if the queue is full)."""
        try:
            self._queue.put_nowait((node, kind, message))
        except queue.Full:
            log.warning("boot: node %s: the event queue is full; waiting for the store", node)
            self._queue.put((node, kind, message))

    def _take_batch(self) -> tuple[list[tuple[str, BootScript, str]], bool]:
        """Block for one item, then take what else is queued (up to BATCH)."""
        items: list[tuple[str, BootScript, str]] = []
        stop = False
        item = self._queue.get()
        while True:
            if item is _STOP:
                stop = True
            else:
                items.append(item)
            if stop or len(items) >= BATCH:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return items, stop

    def _run(self) -> None:
        while True:
            items, stop = self._take_batch()
            try:
                if items:
                    self._write(items)
            finally:
                for _ in range(len(items) + stop):
                    self._queue.task_done()
            if stop:
                return

    def _write(self, items: list[tuple[str, BootScript, str]]) -> None:
        batch = [
            (node, message, EventKind.BOOT_SCRIPT, "bootserver", kind.value)
            for node, kind, message in items
        ]
        for attempt in range(RETRIES):
            try:
                written = self.store.add_events(batch)
                break
            except StateError as exc:
                log.error("boot: %d events not recorded: %s", len(batch), exc)
                return
            except Exception:  # the database busy or away for a moment: try again
                if attempt == RETRIES - 1:
                    log.exception("boot: %d events not recorded", len(batch))
                    return
                log.warning("boot: writing %d events failed; retrying", len(batch), exc_info=True)
                time.sleep(0.2 * 2**attempt)
        if written != len(batch):
            log.error("boot: %d events of nodes not enrolled skipped", len(batch) - written)

    def flush(self) -> None:
        """Wait until every event handed in so far is written."""
        self._queue.join()

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
