"""The power interface every BMC backend implements, its settings and its errors.

A backend supplies four primitives (read power, request a power action, write the
boot device, check the credentials); this base class turns them into the public
operations with what real BMCs need (what Ironic learned the hard way): a minimum
interval between commands to one BMC, retries with backoff on transient errors, a
per-call deadline that also covers waiting until the requested state is reached,
and errors that name the node and the BMC but never the password.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import SecretStr

from provisioner.errors import (
    BmcCommandError,
    BmcTimeout,
    BmcTransientError,
    BmcUnreachable,
    PowerError,
)

log = logging.getLogger(__name__)

PowerState = Literal["on", "off"]
PowerAction = Literal["on", "off", "soft"]
BootDevice = Literal["network", "disk"]
BOOT_DEVICES: tuple[str, ...] = ("network", "disk")
T = TypeVar("T")


@dataclass(frozen=True)
class PowerSettings:
    """Tunables of one power operation; passed in, never global."""

    timeout: float = 30.0  # per public call, including waiting for the state
    min_interval: float = 0.0  # seconds between two commands to the same BMC
    retries: int = 3  # extra attempts on transient errors, within the timeout
    backoff: float = 0.5  # first retry delay, doubled each time
    poll_interval: float = 0.1  # first state poll delay, grows to 1 s


@dataclass(frozen=True)
class BmcEndpoint:
    """Where and how to reach one node's BMC. The password is a SecretStr."""

    node: str
    driver: str
    address: str
    port: int
    user: str
    password: SecretStr
    verify_tls: bool = True

    @property
    def label(self) -> str:
        return f"{self.address}:{self.port}"


class PowerDriver(ABC):
    """One node's BMC. Every public method waits until done or raises PowerError."""

    def __init__(self, endpoint: BmcEndpoint, settings: PowerSettings | None = None) -> None:
        self.endpoint = endpoint
        self.settings = settings or PowerSettings()

    @property
    def node(self) -> str:
        return self.endpoint.node

    # -- what a backend implements (each call may raise PowerError subclasses) --
    @abstractmethod
    def _check(self) -> None:
        """Log in (or open a session) and read something harmless."""

    @abstractmethod
    def _read_power(self) -> PowerState: ...

    @abstractmethod
    def _send_power(self, action: PowerAction) -> None:
        """Ask for 'on', 'off' (hard) or 'soft' (ACPI shutdown); do not wait."""

    @abstractmethod
    def _write_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None: ...

    # -- public operations --
    def validate(self) -> None:
        """Raise unless the BMC answers and accepts the credentials."""
        with self._operation("validate"):
            self._call("validate", self._check, self._deadline())

    def power_state(self) -> PowerState:
        with self._operation("power status"):
            return self._call("power status", self._read_power, self._deadline())

    def power_on(self) -> None:
        with self._operation("power on"):
            self._set_power("on", "on")

    def power_off(self) -> None:
        with self._operation("power off"):
            self._set_power("off", "off")

    def soft_off(self) -> None:
        with self._operation("power soft"):
            self._set_power("soft", "off")

    def power_cycle(self) -> None:
        """Off (hard) then on, each confirmed: a real cold boot that takes the boot flags."""
        with self._operation("power cycle"):
            deadline = self._deadline()
            self._set_power("off", "off", deadline)
            self._set_power("on", "on", deadline)

    def set_boot_device(
        self, device: BootDevice, persistent: bool = False, uefi: bool = True
    ) -> None:
        if device not in BOOT_DEVICES:
            raise BmcCommandError(
                self.node, self.endpoint.label, f"boot device '{device}' is not network or disk"
            )
        log.info(
            "node %s: boot device %s (%s, %s)",
            self.node,
            device,
            "persistent" if persistent else "next boot only",
            "UEFI" if uefi else "legacy",
        )
        with self._operation(f"set boot device {device}"):
            self._call(
                f"set boot device {device}",
                lambda: self._write_boot(device, persistent, uefi),
                self._deadline(),
            )

    # -- machinery --
    @contextmanager
    def _operation(self, what: str) -> Iterator[None]:
        """One public operation: a backend may keep a session for it, closed after.

        Operations on one BMC run one at a time in this process, the way a
        conductor holds a node lock: many BMCs allow few sessions, and pyghmi's
        session setup races when two logins to one BMC overlap (a half-built
        session is handed to the second caller).
        """
        lock = _bmc_lock(self.endpoint.label)
        if not lock.acquire(timeout=self.settings.timeout):
            raise BmcTimeout(
                self.node,
                self.endpoint.label,
                f"{what}: another operation on this BMC did not finish within "
                f"the {self.settings.timeout:g}s timeout",
            )
        try:
            try:
                yield
            except BaseException:
                self._close(failed=True)
                raise
            self._close(failed=False)
        finally:
            lock.release()

    def _close(self, failed: bool) -> None:
        """End what the operation opened (a session); never raises, never blocks
        after a failure (the BMC may be the reason it failed)."""
        log.debug("node %s: operation done (%s)", self.node, "failed" if failed else "ok")

    def _deadline(self) -> float:
        return time.monotonic() + self.settings.timeout

    def _set_power(
        self, action: PowerAction, want: PowerState, deadline: float | None = None
    ) -> None:
        deadline = deadline or self._deadline()
        what = f"power {action}"
        if self._call(what, self._read_power, deadline) == want:
            log.info("node %s: already %s", self.node, want)
            return
        log.info("node %s: %s", self.node, what)
        self._call(what, lambda: self._send_power(action), deadline)
        delay = self.settings.poll_interval
        while True:
            state = self._call(what, self._read_power, deadline)
            if state == want:
                log.info("node %s: power is %s", self.node, want)
                return
            if time.monotonic() + delay >= deadline:
                raise BmcTimeout(
                    self.node,
                    self.endpoint.label,
                    f"{what}: power still {state} after {self.settings.timeout:g}s",
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _call(self, what: str, fn: Callable[[], T], deadline: float) -> T:
        """Run one backend primitive: throttled, retried on transient errors, bounded."""
        delay = self.settings.backoff
        attempt = 0
        while True:
            attempt += 1
            _throttle(self.endpoint.label, self.settings.min_interval, deadline)
            try:
                return _run_before(deadline, fn, self._late(what))
            except (BmcTransientError, BmcUnreachable) as exc:
                left = deadline - time.monotonic()
                if attempt > self.settings.retries or left <= delay:
                    raise
                log.info(
                    "node %s: %s: %s; retry %d in %.1fs",
                    self.node,
                    what,
                    exc.detail,
                    attempt,
                    delay,
                )
                time.sleep(delay)
                delay *= 2

    def _late(self, what: str) -> BmcTimeout:
        return BmcTimeout(
            self.node,
            self.endpoint.label,
            f"{what}: no answer within the {self.settings.timeout:g}s timeout",
        )


_last_command: dict[str, float] = {}
_bmc_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def _bmc_lock(key: str) -> threading.Lock:
    with _registry_lock:
        return _bmc_locks.setdefault(key, threading.Lock())


def _throttle(key: str, min_interval: float, deadline: float) -> None:
    """Keep at least min_interval between two commands to one BMC (process-wide).

    Called only inside an operation, so the caller holds that BMC's lock.
    """
    if min_interval <= 0:
        return
    wait = _last_command.get(key, 0.0) + min_interval - time.monotonic()
    if wait > 0:
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
    _last_command[key] = time.monotonic()


def _run_before(deadline: float, fn: Callable[[], T], late: PowerError) -> T:
    """Run fn in a helper thread and give up at the deadline.

    Library calls (pyghmi's retries, a half-open TCP connection) can take longer
    than our per-call timeout; the abandoned call finishes on its own in the
    background, and the caller gets a clear error on time.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise late
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="bmc-call", daemon=True)
    worker.start()
    worker.join(left)
    if worker.is_alive():
        raise late
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
