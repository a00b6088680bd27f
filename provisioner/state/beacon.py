"""A change beacon: tells readers in other processes that node rows changed, in memory.

The boot server's HTTP workers answer from an in-memory copy of the node rows
(bootserver/nodeindex.py) so no boot-script request touches the database. They
must still see a write the moment it is committed (the pipeline turns build
mode on, then powers the node on). Every store write transaction that may have
changed node rows stores a new value in this small file after its commit;
readers map the file and compare one 8-byte word per request, which is a
memory read, not a system call. A changed value makes the reader fetch the
changed rows once.

Values are nanosecond timestamps made unique per writer, so two writers never
need a lock: any new value differs from the one a reader last saw.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from pathlib import Path

_SIZE = 8
_last_lock = threading.Lock()
_last = 0


def _next_value() -> int:
    global _last
    with _last_lock:
        _last = max(time.time_ns(), _last + 1)
        return _last


class ChangeBeacon:
    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.pwrite(fd, bytes(_SIZE), 0)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)

    def value(self) -> int:
        """The last value any writer stored (a memory read)."""
        return int(struct.unpack_from("<Q", self._map, 0)[0])

    def bump(self) -> None:
        """Tell readers that node rows may have changed (call after the commit)."""
        struct.pack_into("<Q", self._map, 0, _next_value())

    def close(self) -> None:
        self._map.close()
