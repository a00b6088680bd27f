"""A fake BMC, the way Ironic ships a fake hardware type: no hardware, real bookkeeping.

``bmc: {driver: fake, address: <any label>, user: ..., password: ...}`` in site.yaml
selects it. Each node's BMC lives in one small JSON file under the state directory,
``<state dir>/fake-bmc/<node>.json``, so ``provisioner power status NODE`` and
``provisioner bootdev`` in one process see what the daemon's pipeline did in
another. The file holds::

    {"power": "off",
     "boot": {"device": "network", "persistent": false, "uefi": true} or null,
     "last_boot": "network" | "disk" | null,   # what the last power-on booted
     "fault": null | "unreachable" | "auth" | "busy" | "slow",
     "delay": 60.0,                            # seconds a "slow" BMC takes per command
     "history": ["power off", "power on", ...]} # the last commands, oldest first

A fault makes every command fail the way a real BMC does (no answer, credentials
rejected, busy, or answering after ``delay`` seconds so the per-call timeout hits);
set it with ``FakeBmcs(state_dir).set_fault(node, "unreachable")`` or by editing
the file. A one-time boot device is used up by the next power-on, as on real
firmware. The driver subclass adds nothing to the base's throttling, retries,
timeouts and logging: the fake exercises the same machinery as IPMI and Redfish.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from provisioner.errors import (
    BmcAuthError,
    BmcCommandError,
    BmcTransientError,
    BmcUnreachable,
    ConfigError,
)
from provisioner.power.base import (
    BmcEndpoint,
    BootDevice,
    PowerAction,
    PowerDriver,
    PowerSettings,
    PowerState,
)

log = logging.getLogger(__name__)

Fault = Literal["unreachable", "auth", "busy", "slow"]
FAULTS: tuple[str, ...] = get_args(Fault)
FOLDER = "fake-bmc"
HISTORY = 50  # commands kept per node
DEFAULT_DELAY = 60.0


@dataclass(frozen=True)
class FakeBmcState:
    """One node's fake BMC as read from its file."""

    power: PowerState
    boot: dict[str, Any] | None
    last_boot: str | None
    fault: Fault | None
    delay: float
    history: tuple[str, ...]

    @classmethod
    def of(cls, data: dict[str, Any]) -> FakeBmcState:
        fault = data.get("fault")
        return cls(
            power="on" if data.get("power") == "on" else "off",
            boot=data.get("boot") or None,
            last_boot=data.get("last_boot"),
            fault=cast(Fault, fault) if fault in FAULTS else None,
            delay=float(data.get("delay", DEFAULT_DELAY)),
            history=tuple(data.get("history", ())),
        )


class FakeBmcs:
    """The fake BMCs of one state directory: read, change and fault them by node name."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / FOLDER

    def path(self, node: str) -> Path:
        return self.folder / f"{node}.json"

    def read(self, node: str) -> FakeBmcState:
        with self._locked(node) as data:
            return FakeBmcState.of(data)

    def set_fault(self, node: str, fault: str | None, delay: float | None = None) -> None:
        """Make the node's BMC fail every command (``None``: answer normally again)."""
        if fault is not None and fault not in FAULTS:
            raise ConfigError(
                f"node {node}: fake BMC fault '{fault}' is not one of {', '.join(FAULTS)}"
            )
        with self._locked(node) as data:
            data["fault"] = fault
            if delay is not None:
                data["delay"] = delay
        log.info("node %s: fake BMC fault set to %s", node, fault or "none")

    @contextlib.contextmanager
    def _locked(self, node: str) -> Iterator[dict[str, Any]]:
        """The node's file, read under an exclusive lock and written back when done.

        A lock file beside it (flock) serialises processes; the write goes through
        a temporary file and a rename, so a reader never sees half a file."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path(node)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(path.read_text()) if path.exists() else {}
            except (OSError, ValueError) as exc:
                raise ConfigError(f"node {node}: fake BMC file {path}: unreadable: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"node {node}: fake BMC file {path} is not a JSON object")
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
                os.replace(tmp, path)


class FakePower(PowerDriver):
    """A node's fake BMC: the base class's operations over a JSON file."""

    def __init__(
        self,
        endpoint: BmcEndpoint,
        settings: PowerSettings | None = None,
        state_dir: Path | None = None,
    ) -> None:
        super().__init__(endpoint, settings)
        if state_dir is None:
            raise ConfigError(
                f"node {endpoint.node}: bmc.driver fake keeps its state in the state "
                "directory, and none was given to the power driver"
            )
        self.bmcs = FakeBmcs(state_dir)

    # -- primitives --
    def _check(self) -> None:
        self._command("validate", None)

    def _read_power(self) -> PowerState:
        return self._command("power status", None)

    def _send_power(self, action: PowerAction) -> None:
        self._command(f"power {action}", action)

    def _write_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        mode = f"{'persistent' if persistent else 'once'} {'uefi' if uefi else 'bios'}"
        what = f"boot {device} {mode}"
        with self._answering(what) as data:
            data["boot"] = {"device": device, "persistent": persistent, "uefi": uefi}
            _remember(data, what)

    def boot_device(self) -> dict[str, Any]:
        """The boot override as the BMC reports it (as RedfishPower.boot_device)."""
        with self._operation("get boot device"):
            boot = self._call(
                "get boot device",
                lambda: self.bmcs.read(self.node).boot,
                self._deadline(),
            )
        if boot is None:
            return {"device": None, "valid": False, "persistent": False, "uefi": None}
        return {**boot, "valid": True}

    # -- the simulated hardware --
    def _command(self, what: str, action: PowerAction | None) -> PowerState:
        with self._answering(what) as data:
            power: PowerState = "on" if data.get("power") == "on" else "off"
            if action is None:
                return power
            wanted: PowerState = "on" if action == "on" else "off"
            if power == "off" and wanted == "on":
                boot = data.get("boot") or {}
                data["last_boot"] = boot.get("device", "disk")
                if boot and not boot.get("persistent"):
                    data["boot"] = None  # a one-time override is used up by this boot
            data["power"] = wanted
            _remember(data, what)
            return wanted

    @contextlib.contextmanager
    def _answering(self, what: str) -> Iterator[dict[str, Any]]:
        """The node's BMC file if the BMC answers; its fault as the matching error."""
        label = self.endpoint.label
        bmc = self.bmcs.read(self.node)
        fault = bmc.fault
        if fault == "slow":
            log.debug("node %s: fake BMC answers %s in %gs", self.node, what, bmc.delay)
            time.sleep(bmc.delay)  # the base class's deadline gives up on us first
        elif fault == "unreachable":
            raise BmcUnreachable(self.node, label, f"{what}: no answer (fake BMC fault)")
        elif fault == "auth":
            raise BmcAuthError(self.node, label, f"{what}: credentials rejected (fake BMC fault)")
        elif fault == "busy":
            raise BmcTransientError(self.node, label, f"{what}: BMC busy (fake BMC fault)")
        try:
            with self.bmcs._locked(self.node) as data:
                yield data
        except ConfigError as exc:
            raise BmcCommandError(self.node, label, f"{what}: {exc}") from exc


def _remember(data: dict[str, Any], what: str) -> None:
    data["history"] = [*data.get("history", []), what][-HISTORY:]
