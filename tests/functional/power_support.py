"""Shared helpers of the power tests: free ports, virtual BMCs, ipmitool."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from provisioner import programs
from provisioner.power.base import BmcEndpoint, PowerSettings
from provisioner.power.ipmi import IpmiPower
from provisioner_lab.vbmc.serve import Child, VbmcSpec, start_children, stop_children

PORT_RANGE = (16200, 16999)  # this range; other test suites use others
USER = "admin"


def free_ports(count: int, kind: int = socket.SOCK_DGRAM) -> list[int]:
    """Ports in our range that nothing listens on right now."""
    ports: list[int] = []
    candidates = list(range(*PORT_RANGE))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free ports left in the test range")


def spec(name: str, port: int, password: str, state_dir: Path, **extra: object) -> VbmcSpec:
    return VbmcSpec(
        name=name,
        port=port,
        user=USER,
        password=SecretStr(password),
        state_dir=state_dir,
        **extra,  # type: ignore[arg-type]
    )


@contextmanager
def running(specs: list[VbmcSpec]) -> Iterator[list[Child]]:
    children = start_children(specs, timeout=120)
    try:
        yield children
    finally:
        stop_children(children)


def driver(
    name: str, port: int, password: str, timeout: float = 20.0, **settings: float
) -> IpmiPower:
    endpoint = BmcEndpoint(name, "ipmi", "127.0.0.1", port, USER, SecretStr(password))
    return IpmiPower(endpoint, PowerSettings(timeout=timeout, **settings))  # type: ignore[arg-type]


def ipmitool(port: int, password: str, *args: str) -> str:
    """The reference client; -C 3 because pyghmi's BMC server only offers suite 3."""
    base = [programs.path("ipmitool"), "-I", "lanplus", "-C", "3", "-N", "2", "-R", "3", "-E"]
    result = subprocess.run(
        [*base, "-H", "127.0.0.1", "-p", str(port), "-U", USER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IPMI_PASSWORD": password},  # not on the command line
    )
    if result.returncode != 0:
        raise AssertionError(f"ipmitool {' '.join(args)} failed: {result.stderr}")
    return result.stdout
