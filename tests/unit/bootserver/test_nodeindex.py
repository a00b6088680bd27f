"""The boot server's in-memory node rows (bootserver/nodeindex.py) and the store's
change beacon: a write through another Store (another process's connection) is
seen by the next lookup; events go in by the batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.bootserver.nodeindex import NodeIndex
from provisioner.state.machine import EventKind
from provisioner.state.store import Store


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Store, Store]:
    server, pipeline = Store.open(tmp_path), Store.open(tmp_path)
    yield server, pipeline
    server.close()
    pipeline.close()


def test_a_write_elsewhere_is_seen_by_the_next_lookup(stores: tuple[Store, Store]) -> None:
    server, pipeline = stores
    pipeline.enroll("ctl1")
    index = NodeIndex(server)
    record = index.find("ctl1")
    assert record is not None and not record.build_mode
    assert index.find("cmp1") is None

    pipeline.start_build_mode("ctl1")
    pipeline.enroll("cmp1")
    record = index.find("ctl1")
    assert record is not None and record.build_mode and record.deploy_id
    assert index.find("cmp1") is not None

    pipeline.end_build_mode("ctl1", why="test")
    record = index.find("ctl1")
    assert record is not None and not record.build_mode


def test_lookups_without_writes_do_not_query(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, pipeline = stores
    pipeline.enroll("ctl1")
    index = NodeIndex(server)

    def no_query(*_args: object) -> None:
        raise AssertionError("the store was read")

    monkeypatch.setattr(server, "changed_since", no_query)
    monkeypatch.setattr(server, "find", no_query)
    pipeline.add_event("ctl1", "a note")  # events do not change node rows
    for _ in range(100):
        assert index.find("ctl1") is not None


def test_events_are_written_by_the_batch_skipping_unknown_nodes(
    stores: tuple[Store, Store],
) -> None:
    server, pipeline = stores
    pipeline.enroll("ctl1")
    batch = [
        ("ctl1", f"script {i}", EventKind.BOOT_SCRIPT, "bootserver", "local") for i in range(5)
    ]
    batch.append(("ghost", "not enrolled", EventKind.BOOT_SCRIPT, "bootserver", "local"))
    assert server.add_events(batch) == 5
    scripts = [e for e in pipeline.events("ctl1") if e.kind == EventKind.BOOT_SCRIPT]
    assert [e.message for e in scripts] == [f"script {i}" for i in range(5)]
