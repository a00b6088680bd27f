"""Where a node's minutes went: phases of its latest deployment from its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provisioner.state.machine import EventKind
from provisioner.state.store import EventRecord
from provisioner_lab.report import (
    Deployment,
    batch_starts,
    image_transfer_seconds,
    latest_deployment,
    phases,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _e(i: int, s: float, kind: EventKind, event: str | None = None, to: str | None = None,
       message: str = "") -> EventRecord:  # fmt: skip
    return EventRecord(i, "ctl2", T0 + timedelta(seconds=s), kind, event, None, to, message, "t")


def _deployment(offset: float) -> list[EventRecord]:
    return [
        _e(1, offset + 0, EventKind.TRANSITION, "provision", "provisioning"),
        _e(2, offset + 10, EventKind.POWER, "cycle"),
        _e(3, offset + 40, EventKind.BOOT_SCRIPT, "install"),
        _e(4, offset + 45, EventKind.KICKSTART_SERVED),
        _e(5, offset + 170, EventKind.CALLBACK, "installed"),
        _e(6, offset + 230, EventKind.CALLBACK, "booted", message=(
            "booted from disk: kernel 6.1.0-57-cloud-amd64, up 31.2 s")),
        _e(7, offset + 235, EventKind.TRANSITION, "activate", "active"),
    ]  # fmt: skip


def test_the_latest_deployment_is_split_into_its_phases() -> None:
    events = _deployment(0) + _deployment(1000)  # a reprovision: only the second counts
    d = latest_deployment(events)
    assert d.kernel == "6.1.0-57-cloud-amd64"
    assert d.seconds_to_booted == 220
    p = phases(d, image_s=50)
    assert (p.firmware, p.installer, p.image, p.first_boot) == (30, 80, 50, 60)
    assert (p.pipeline, p.total) == (15, 235)


def test_a_node_not_booted_yet_has_no_booted_time() -> None:
    d = latest_deployment(_deployment(0)[:5])
    assert d.booted is None and d.seconds_to_booted is None and d.kernel is None
    assert latest_deployment([]).power_cycle is None


def test_image_transfer_from_the_latest_install_on_the_console() -> None:
    one = (
        "provisioner LAB INSTALLER -- test equipment\n"
        "lab-installer: [12s] image: streaming http://x/images/k/image.tar.zst (sha256 ...)\n"
        "lab-installer: [70s] image unpacked: sha256 ab, 700 MiB on /\n"
    )
    two = one.replace("[12s]", "[10s]").replace("[70s]", "[55s]")
    assert image_transfer_seconds(one) == 58
    assert image_transfer_seconds(one + "...\n" + two) == 45
    assert image_transfer_seconds("no installer here") is None


def test_a_rebuild_is_one_batch_and_a_later_reprovision_its_own() -> None:
    def deployment(start: float, end: float | None) -> Deployment:
        active = T0 + timedelta(seconds=end) if end is not None else None
        return Deployment(started=T0 + timedelta(seconds=start), active=active)

    ctl1, ctl2, cmp1 = deployment(0, 200), deployment(201, 500), deployment(501, 700)
    again = deployment(2000, None)  # a reprovision long after, still running
    batches = batch_starts([cmp1, ctl2, again, ctl1])
    assert batches[T0 + timedelta(seconds=501)] == T0  # waited for ctl1 and ctl2
    assert batches[T0 + timedelta(seconds=2000)] == T0 + timedelta(seconds=2000)
    p = phases(ctl2, None, batches[T0 + timedelta(seconds=201)])
    assert p.total == 500
