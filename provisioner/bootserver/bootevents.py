"""Boot script events written off the request path.

A boot script must come back in milliseconds, but a store write is a
transaction with an fsync (about 2 ms alone, far more when many request threads
contend for the SQLite write lock). Each HTTP worker process therefore hands
its events to one writer thread; the pipeline sees an event a few milliseconds
after the script went out. Pending events are flushed when the worker exits.

Each one is a typed BOOT_SCRIPT event whose event name is the script's kind
(``BootScript``: install, local, discovery), which is what the pipeline waits
for. A worker killed outright may lose the events still queued; the pipeline
also counts the installer's later, synchronously recorded events (kickstart,
callback) as proof of the boot.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading

from provisioner.errors import StateError
from provisioner.state.machine import BootScript, EventKind
from provisioner.state.store import Store

log = logging.getLogger(__name__)

_STOP = None


class BootEventWriter:
    def __init__(self, store: Store, max_pending: int = 10_000) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[str, BootScript, str] | None] = queue.Queue(max_pending)
        self._thread = threading.Thread(target=self._run, name="boot-events", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, node: str, kind: BootScript, message: str) -> None:
        """Queue a BOOT_SCRIPT event named ``kind`` for ``node``."""
        try:
            self._queue.put_nowait((node, kind, message))
        except queue.Full:
            log.error(
                "boot: node %s: event dropped, the store is not keeping up: %s", node, message
            )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                node, kind, message = item
                try:
                    self.store.add_event(
                        node, message, EventKind.BOOT_SCRIPT, actor="bootserver", event=kind.value
                    )
                except StateError as exc:
                    log.error("boot: node %s: event not recorded: %s", node, exc)
                except Exception:
                    log.exception("boot: node %s: event not recorded", node)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every event handed in so far is written."""
        self._queue.join()

    def close(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
