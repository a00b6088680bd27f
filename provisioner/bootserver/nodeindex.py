"""The node rows a boot-script request needs, in memory, kept current by the store's beacon.

A boot script depends on the node's row (enrolled? in build mode? which
deploy?). Reading it from the database on each request cost 13-15% of the
route's time at 10,000 nodes and made requests queue behind SQLite's lock.
Each HTTP worker keeps a copy of every row instead; the store bumps its change
beacon (state/beacon.py) after each write, and the next request that sees a
new value fetches the rows changed lately (one query, not one per request).
A write is therefore visible to the very next request, as with a read.

Without a beacon (a server database, no state dir), every lookup reads the
store, as before.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from provisioner.state.store import NodeRecord, Store, utcnow

#: rows changed this long before the last refresh are fetched again: a transaction
#: stamps updated_at when it starts and may commit a little later
OVERLAP = timedelta(minutes=1)


class NodeIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.beacon = store.beacon
        self._lock = threading.Lock()
        self._records: dict[str, NodeRecord] = {}
        self._seen = -1
        self._since = utcnow()
        if self.beacon is not None:
            self._seen = self.beacon.value()
            self._since = utcnow() - OVERLAP
            self._records = {r.name: r for r in store.all()}

    def find(self, name: str) -> NodeRecord | None:
        """The node's row as of the last committed write (None: not enrolled)."""
        if self.beacon is None:
            return self.store.find(name)
        if self.beacon.value() != self._seen:
            self._refresh()
        return self._records.get(name)

    def _refresh(self) -> None:
        assert self.beacon is not None
        with self._lock:
            seen = self.beacon.value()  # read before the query: a later bump refreshes again
            if seen == self._seen:
                return  # another thread refreshed meanwhile
            started = utcnow()
            records = dict(self._records)
            for record in self.store.changed_since(self._since):
                records[record.name] = record
            self._records = records
            self._since = started - OVERLAP
            self._seen = seen
