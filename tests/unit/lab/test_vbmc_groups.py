"""How `vbmc serve` spreads BMCs over processes, and the pyghmi table fix of ioloop.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from provisioner_lab.vbmc.ioloop import _PerPortHandlers
from provisioner_lab.vbmc.qemu import QemuSpec
from provisioner_lab.vbmc.serve import MAX_PER_PROCESS, VbmcSpec, groups


def _spec(i: int, qemu: bool = False) -> VbmcSpec:
    extra = {"qemu": QemuSpec(name=f"q{i}")} if qemu else {}
    return VbmcSpec(
        name=f"n{i:04d}",
        port=20000 + i,
        user="admin",
        password=SecretStr("pw"),
        state_dir=Path("/tmp/vbmc"),
        **extra,  # type: ignore[arg-type]
    )


def test_simulated_bmcs_share_one_process_per_cpu() -> None:
    parts = groups([_spec(i) for i in range(200)], cpus=2)
    assert [len(p) for p in parts] == [100, 100]
    assert [s.name for p in parts for s in p] == [f"n{i:04d}" for i in range(200)]


def test_a_few_bmcs_stay_in_one_process_and_many_are_capped() -> None:
    assert [len(p) for p in groups([_spec(i) for i in range(6)], cpus=8)] == [6]
    many = groups([_spec(i) for i in range(1000)], cpus=2)
    assert len(many) == 3 and max(len(p) for p in many) <= MAX_PER_PROCESS


def test_each_qemu_bmc_keeps_a_process_of_its_own() -> None:
    specs = [_spec(0, qemu=True), _spec(1), _spec(2), _spec(3, qemu=True)]
    parts = groups(specs, cpus=2)
    assert sorted(sorted(s.name for s in p) for p in parts) == [
        ["n0000"],
        ["n0001", "n0002"],
        ["n0003"],
    ]


def test_forgetting_a_client_drops_only_its_session_with_the_bmc_served() -> None:
    client = ("127.0.0.1", 40000)
    table = _PerPortHandlers({client: {623: "session with A", 624: "session with B"}})
    table.serving_port = 624
    del table[client]  # what pyghmi does when the client starts over with BMC B
    assert table == {client: {623: "session with A"}}
    table.serving_port = 623
    del table[client]
    assert client not in table
