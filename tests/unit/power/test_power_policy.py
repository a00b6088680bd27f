"""The PowerDriver policy (retries, deadline, state wait, throttle) over a scripted
backend: the logic under test is ours; real BMCs are in tests/functional."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import SecretStr

from provisioner.errors import BmcAuthError, BmcTimeout, BmcTransientError
from provisioner.power.base import (
    BmcEndpoint,
    BootDevice,
    PowerAction,
    PowerDriver,
    PowerSettings,
    PowerState,
)


class Scripted(PowerDriver):
    """A BMC whose answers are listed in advance: a value, an exception, or 'hang'."""

    def __init__(
        self, settings: PowerSettings, reads: list[object], sends: list[object] | None = None
    ):
        super().__init__(
            BmcEndpoint("n1", "ipmi", "192.0.2.99", 623, "admin", SecretStr("pw-secret")), settings
        )
        self.reads, self.sends = list(reads), list(sends or [None])
        self.calls: list[tuple[str, float]] = []

    def _next(self, queue: list[object], what: str) -> object:
        self.calls.append((what, time.monotonic()))
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if item == "hang":
            threading.Event().wait(30)
        if isinstance(item, Exception):
            raise item
        return item

    def _check(self) -> None:
        self._read_power()

    def _read_power(self) -> PowerState:
        return self._next(self.reads, "read")  # type: ignore[return-value]

    def _send_power(self, action: PowerAction) -> None:
        self._next(self.sends, f"send {action}")

    def _write_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        self._next(self.sends, f"boot {device}")


def busy() -> BmcTransientError:
    return BmcTransientError("n1", "192.0.2.99:623", "node busy")


FAST = PowerSettings(timeout=5, backoff=0.01, poll_interval=0.01)


def test_transient_errors_are_retried_with_backoff() -> None:
    drv = Scripted(FAST, reads=[busy(), busy(), "on"])
    assert drv.power_state() == "on"
    assert [c[0] for c in drv.calls] == ["read", "read", "read"]


def test_retries_are_bounded() -> None:
    drv = Scripted(PowerSettings(timeout=5, retries=2, backoff=0.01), reads=[busy()])
    with pytest.raises(BmcTransientError):
        drv.power_state()
    assert len(drv.calls) == 3


def test_auth_errors_are_not_retried() -> None:
    drv = Scripted(FAST, reads=[BmcAuthError("n1", "192.0.2.99:623", "credentials rejected")])
    with pytest.raises(BmcAuthError):
        drv.power_state()
    assert len(drv.calls) == 1


def test_power_on_waits_until_the_bmc_reports_on() -> None:
    drv = Scripted(FAST, reads=["off", "off", "off", "on"])
    drv.power_on()
    assert [c[0] for c in drv.calls] == ["read", "send on", "read", "read", "read"]


def test_power_on_is_a_no_op_when_already_on() -> None:
    drv = Scripted(FAST, reads=["on"])
    drv.power_on()
    assert [c[0] for c in drv.calls] == ["read"]


def test_state_never_reached_is_a_timeout_naming_node_and_bmc() -> None:
    drv = Scripted(PowerSettings(timeout=0.5, poll_interval=0.01), reads=["off"])
    with pytest.raises(BmcTimeout, match=r"node n1: BMC 192.0.2.99:623: power on: power still off"):
        drv.power_on()


def test_a_hanging_bmc_call_ends_at_the_deadline() -> None:
    drv = Scripted(PowerSettings(timeout=0.5), reads=["hang"])
    start = time.monotonic()
    with pytest.raises(BmcTimeout, match=r"no answer within the 0\.5s timeout") as info:
        drv.power_state()
    assert time.monotonic() - start < 2.5
    assert "pw-secret" not in str(info.value)


def test_cycle_is_off_then_on_each_confirmed() -> None:
    drv = Scripted(FAST, reads=["on", "off", "off", "on"])
    drv.power_cycle()
    assert [c[0] for c in drv.calls] == ["read", "send off", "read", "read", "send on", "read"]


def test_min_interval_spaces_commands_to_one_bmc() -> None:
    drv = Scripted(PowerSettings(timeout=5, min_interval=0.2), reads=["on"])
    drv.power_state()
    drv.power_state()
    (_, first), (_, second) = drv.calls
    assert second - first >= 0.19


def test_unknown_boot_device_is_refused_before_talking_to_the_bmc() -> None:
    drv = Scripted(FAST, reads=["on"])
    with pytest.raises(Exception, match="boot device 'cdrom' is not network or disk"):
        drv.set_boot_device("cdrom")  # type: ignore[arg-type]
    assert drv.calls == []
