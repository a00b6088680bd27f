"""Many virtual BMCs in few processes, hit by several clients at once (issue 20).

pyghmi's server broke with several BMCs in one process once many clients came
(LIBRARIES.md); vbmc now serves a group of BMCs from one loop (vbmc/ioloop.py).
Here 96 BMCs in two processes take the project's fan-out (pyghmi's client puts
up to 64 BMCs on one UDP socket: the case where pyghmi's server dropped other
BMCs' sessions) from two threads at once, while ipmitool changes and reads some."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from power_support import driver, free_ports, ipmitool, running, spec

from provisioner.power.fanout import run_many

pytestmark = pytest.mark.functional

PASSWORD = "many-Secret-9"
COUNT = 96


def test_many_bmcs_in_few_processes_answer_every_client_at_once(tmp_path: Path) -> None:
    ports = free_ports(COUNT)
    specs = [spec(f"m{i:03d}", p, PASSWORD, tmp_path) for i, p in enumerate(ports)]
    with running(specs) as children:
        assert 1 < len({c.proc.pid for c in children}) <= max(2, os.cpu_count() or 1)
        drivers = [driver(s.name, s.port, PASSWORD, timeout=20) for s in specs]
        # fan-out 16 for the writes: pyghmi's client itself (not the BMCs) lost answers at
        # 96 concurrent power-ons now and then, while the BMCs had carried them out
        powered = run_many(drivers, lambda d: d.power_on(), fanout=16)
        assert all(r.ok for r in powered), [r.error for r in powered if not r.ok][:3]

        found: dict[str, list[object]] = {"ipmitool": [], "second client": []}

        def ipmitool_meanwhile() -> None:
            for port in ports[::8]:
                found["ipmitool"].append(ipmitool(port, PASSWORD, "chassis", "power", "status"))

        def second_client() -> None:
            others = [driver(s.name, s.port, PASSWORD, timeout=20) for s in specs]
            for _ in range(2):
                found["second client"].append(
                    run_many(others, lambda d: d.boot_device()["device"], fanout=32)
                )

        threads = [threading.Thread(target=f) for f in (ipmitool_meanwhile, second_client)]
        for thread in threads:
            thread.start()
        rounds = [run_many(drivers, lambda d: d.power_state(), fanout=COUNT) for _ in range(3)]
        for thread in threads:
            thread.join()

    for results in rounds:
        assert {r.node: (r.ok, r.value) for r in results} == {
            s.name: (True, "on") for s in specs
        }, [r.error for r in results if not r.ok][:3]
    for results in found["second client"]:
        assert all(r.ok and r.value == "disk" for r in results)  # type: ignore[attr-defined]
    assert len(found["ipmitool"]) == COUNT // 8
    assert all("Chassis Power is on" in str(text) for text in found["ipmitool"])
