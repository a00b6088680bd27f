"""Where a lab node's minutes went, read back from its event log (and serial console).

One deployment is the events from the node's latest move to ``provisioning`` on:
the pipeline's power cycle, the boot script the firmware fetched, the kickstart,
the installer's "installed" callback, the installed system's "booted" callback
and the move to ``active``. The lab installer's console lines carry seconds since
it started, which split the image transfer out of the install. Pure functions:
``lab status`` and ``benchmarks/lab_phases.py`` feed them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from provisioner.state.machine import EventKind
from provisioner.state.store import EventRecord

_KERNEL = re.compile(r"\bkernel (?P<kernel>[^\s,]+)")
_SAY = re.compile(r"lab-installer: \[(?P<s>\d+)s\] (?P<text>.*)")


@dataclass(frozen=True)
class Deployment:
    """The timestamps of a node's latest deployment (None: not reached)."""

    started: datetime | None = None  # -> provisioning
    power_cycle: datetime | None = None
    boot_script: datetime | None = None  # the firmware fetched the install boot script
    installed: datetime | None = None  # the installer's callback
    booted: datetime | None = None  # the installed system's first-boot callback
    active: datetime | None = None
    kernel: str | None = None  # from the booted callback

    @property
    def seconds_to_booted(self) -> float | None:
        """Power cycle to the installed system's callback: the node's own time."""
        return _between(self.power_cycle, self.booted)


def _between(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


def latest_deployment(events: Sequence[EventRecord]) -> Deployment:
    """The latest deployment in a node's events (oldest first)."""
    starts = [i for i, e in enumerate(events)
              if e.kind is EventKind.TRANSITION and e.to_state == "provisioning"]  # fmt: skip
    if not starts:
        return Deployment()
    rest = events[starts[-1] :]
    found: dict[str, datetime] = {}
    kernel = None
    for e in rest:
        key = None
        if e.kind is EventKind.POWER and e.event == "cycle":
            key = "power_cycle"
            found.pop("boot_script", None)  # a retry cycles again: count from the last one
        elif e.kind is EventKind.BOOT_SCRIPT and e.event == "install":
            key = "boot_script"
        elif e.kind is EventKind.CALLBACK and e.event in ("installed", "booted"):
            key = str(e.event)
            if e.event == "booted":
                m = _KERNEL.search(e.message)
                kernel = m.group("kernel") if m else None
        elif e.kind is EventKind.TRANSITION and e.to_state == "active":
            key = "active"
        if key is not None and (key not in found or key == "power_cycle"):
            found[key] = e.at
    return Deployment(
        started=rest[0].at,
        power_cycle=found.get("power_cycle"),
        boot_script=found.get("boot_script"),
        installed=found.get("installed"),
        booted=found.get("booted"),
        active=found.get("active"),
        kernel=kernel,
    )


def image_transfer_seconds(console: str) -> float | None:
    """The latest install's image download + unpack, from the lab installer's console."""
    last = console.rfind("LAB INSTALLER")
    begin = end = None
    for line in console[max(last, 0) :].splitlines():
        m = _SAY.search(line)
        if m is None:
            continue
        if m.group("text").startswith("image: streaming"):
            begin = int(m.group("s"))
        elif m.group("text").startswith("image unpacked:"):
            end = int(m.group("s"))
    return float(end - begin) if begin is not None and end is not None else None


@dataclass(frozen=True)
class Phases:
    """Seconds of one deployment per phase (None: not measured)."""

    firmware: float | None  # power cycle -> install boot script fetched
    installer: float | None  # boot script -> installed callback, less the image transfer
    image: float | None  # image download and unpack (the installer's console)
    first_boot: float | None  # installed callback -> booted callback (reboot, GRUB, systemd)
    pipeline: float | None  # waiting for a fan-out slot before the cycle + hooks after booted
    total: float | None  # the batch's (or the node's) -> provisioning to -> active


def phases(d: Deployment, image_s: float | None, batch_started: datetime | None = None) -> Phases:
    """``batch_started``: when the rebuild that deployed this node began (its first
    node's move to ``provisioning``): the pipeline moves a node there only when a
    fan-out slot frees, so the wait for one counts from the batch's start."""
    installer = _between(d.boot_script, d.installed)
    if installer is not None and image_s is not None:
        installer -= image_s
    queued = _between(batch_started or d.started, d.power_cycle)
    hooks = _between(d.booted or d.installed, d.active)
    pipeline = queued + hooks if queued is not None and hooks is not None else queued
    return Phases(
        firmware=_between(d.power_cycle, d.boot_script),
        installer=installer,
        image=image_s,
        first_boot=_between(d.installed, d.booted),
        pipeline=pipeline,
        total=_between(batch_started or d.started, d.active),
    )


def batch_starts(
    deployments: Sequence[Deployment], gap_s: float = 10.0
) -> dict[datetime, datetime]:
    """Each deployment's start -> the start of its batch (one rebuild or reprovision).

    A rebuild moves the next node to provisioning as a fan-out slot frees, i.e.
    when another node of it turns active; a deployment that starts more than
    ``gap_s`` after every earlier one of the batch became active begins a new
    batch (e.g. a reprovision on the running lab). One that never became active
    keeps its batch open."""
    out: dict[datetime, datetime] = {}
    current: list[Deployment] = []
    for d in sorted((d for d in deployments if d.started), key=lambda d: str(d.started)):
        start = d.started
        assert start is not None
        busy = any(p.active is None or (start - p.active).total_seconds() <= gap_s for p in current)
        if not busy:
            current = []
        current.append(d)
        out[start] = current[0].started or start
    return out
