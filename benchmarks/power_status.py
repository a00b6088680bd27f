"""Wall time of `power status` over many BMCs: the project's fan-out vs the classics.

First times the README's ``provisioner vbmc serve --simulated N`` from start to
its "serving" line (every BMC listening), for the largest N.

Then starts N virtual BMCs of the product (``provisioner vbmc``'s simulated mode:
the real IPMI server, no qemu; a few processes serve them all) on 127.0.0.1, and times:

  * provisioner: ``run_many(power_state)`` with the default fan-out (50), twice in
    one process (each operation logs in, reads, logs out: as the CLI does);
  * ipmitool:   ``ipmitool -I lanplus -C 3 ... chassis power status`` in a loop;
  * ipmipower:  FreeIPMI's ``ipmipower --stat`` over all hosts in one process.

Usage: python3 benchmarks/power_status.py [--counts 50,200] [--fanout 50]
Not run by `make test`. Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record

from provisioner import programs
from provisioner.power.base import BmcEndpoint, PowerSettings
from provisioner.power.fanout import run_many
from provisioner.power.ipmi import IpmiPower
from provisioner_lab.vbmc.serve import (
    VbmcError,
    VbmcSpec,
    start_children,
    stop_children,
)

PORTS = (16300, 16999)
USER = "admin"
IPMITOOL = ["ipmitool", "-I", "lanplus", "-C", "3", "-E"]  # password from IPMI_PASSWORD
IPMIPOWER = ["ipmipower", "-D", "LAN_2_0", "-I", "3", "--config-file"]


def free_ports(count: int) -> list[int]:
    ports = []
    candidates = list(range(*PORTS))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return sorted(ports)
    raise SystemExit(f"only {len(ports)} free UDP ports in {PORTS}")


def time_provisioner(ports: list[int], password: str, fanout: int) -> tuple[float, int]:
    drivers = [
        IpmiPower(
            BmcEndpoint(f"vnode{i:03d}", "ipmi", "127.0.0.1", port, USER, SecretStr(password)),
            PowerSettings(timeout=10),
        )
        for i, port in enumerate(ports)
    ]
    start = time.monotonic()
    results = run_many(drivers, lambda d: d.power_state(), fanout=fanout)
    return time.monotonic() - start, sum(r.ok and r.value in ("on", "off") for r in results)


def time_ipmitool(ports: list[int], password: str) -> tuple[float, int]:
    env = {**os.environ, "IPMI_PASSWORD": password}
    ok = 0
    start = time.monotonic()
    for port in ports:
        out = subprocess.run(
            [
                *programs.command(IPMITOOL),
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                USER,
                "chassis",
                "power",
                "status",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        ok += "Chassis Power is" in out.stdout
    return time.monotonic() - start, ok


def time_ipmipower(ports: list[int], password: str, fanout: int) -> tuple[float, int]:
    ipmipower = programs.command(IPMIPOWER)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as conf:
        conf.write(f"username {USER}\npassword {password}\n")  # not on the command line
    try:
        hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
        start = time.monotonic()
        out = subprocess.run(
            [*ipmipower, conf.name, "-F", str(max(fanout, 1)), "-h", hosts, "--stat"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        elapsed = time.monotonic() - start
    finally:
        os.unlink(conf.name)
    ok = sum(line.rstrip().endswith((": on", ": off")) for line in out.stdout.splitlines())
    return elapsed, ok


def consecutive_free_ports(count: int) -> int:
    """The first port of ``count`` consecutive free UDP ports in our range."""
    start = PORTS[0]
    while start + count <= PORTS[1]:
        for port in range(start, start + count):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    start = port + 1
                    break
        else:
            return start
    raise SystemExit(f"no {count} consecutive free UDP ports in {PORTS}")


def time_cli_ready(count: int, password: str) -> float:
    """Seconds from starting `provisioner vbmc serve --simulated COUNT` (the README
    command) until it prints that it serves them all; then Ctrl-C."""
    base = consecutive_free_ports(count)
    with tempfile.TemporaryDirectory(prefix="vbmc-ready-") as tmp:
        pw = Path(tmp) / "pw"
        pw.write_text(password + "\n")
        pw.chmod(0o600)
        argv = [str(Path(sys.executable).with_name("provisioner")), "--state-dir", tmp]
        argv += ["vbmc", "serve", "--simulated", str(count), "--base-port", str(base)]
        argv += ["--password-file", str(pw)]
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            ready = time.monotonic() - start
            if f"serving {count} virtual BMC(s)" not in line:
                raise SystemExit(f"vbmc serve --simulated {count} failed: {line!r}")
            answers = time_ipmipower(list(range(base, base + count)), password, 64)[1]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(f"{count:>5}  vbmc serve --simulated {count}: ready in {ready:.2f} s "
          f"({answers} answered ipmipower)")  # fmt: skip
    record(
        f"{count} virtual BMCs ready (`vbmc serve --simulated {count}`)",
        ready,
        "s",
        "< 10 s",
        ready < 10.0 and answers == count,
        note=f"{answers}/{count} answered ipmipower right after",
    )
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,200")
    parser.add_argument("--fanout", type=int, default=50)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    password = secrets.token_urlsafe(12)
    print(f"{'BMCs':>5}  {'tool':<34} {'wall s':>8} {'ok':>5}")
    time_cli_ready(max(counts), password)
    for count in counts:
        for _attempt in range(3):  # a port taken between our check and the BMC's bind
            try:
                run_count(count, password, args.fanout)
                break
            except VbmcError as exc:
                print(f"{count:>5}  ({exc}; retrying with other ports)")


def run_count(count: int, password: str, fanout: int) -> None:
    ports = free_ports(count)
    with tempfile.TemporaryDirectory(prefix="pv3-bench-") as tmp:
        specs = [
            VbmcSpec(
                name=f"vnode{i:03d}",
                port=port,
                user=USER,
                password=SecretStr(password),
                state_dir=Path(tmp),
            )
            for i, port in enumerate(ports)
        ]
        started = time.monotonic()
        children = start_children(specs, timeout=600)
        started_for = time.monotonic() - started
        print(f"{count:>5}  ({count} virtual BMCs ready in {started_for:.1f}s)")
        try:
            rows = [
                (f"provisioner fan-out {fanout}, run 1", time_provisioner(ports, password, fanout)),
                (f"provisioner fan-out {fanout}, run 2", time_provisioner(ports, password, fanout)),
                ("ipmitool in a loop", time_ipmitool(ports, password)),
                (f"ipmipower --stat, fanout {fanout}", time_ipmipower(ports, password, fanout)),
            ]
        finally:
            stop_children(children)
    for name, (wall, ok) in rows:
        print(f"{count:>5}  {name:<34} {wall:>8.3f} {ok:>5}")
    sys.stdout.flush()
    ours = min(rows[0][1][0], rows[1][1][0])
    ipmipower = rows[3][1][0]
    record(
        f"power status, {count} BMCs (library fan-out, not the CLI)",
        ours,
        "s",
        "< ipmipower",
        ours < ipmipower and rows[0][1][1] == count,
        reference=ipmipower,
        reference_name="ipmipower --stat",
        note=f"{count} virtual BMCs ready in {started_for:.1f} s",
    )


if __name__ == "__main__":
    main()
