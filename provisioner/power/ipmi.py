"""IPMI-over-LAN (RMCP+) power driver on pyghmi.

Raw chassis commands are used instead of pyghmi's ``set_power``/``set_bootdev``
helpers: the helpers poll with a fixed 1 s sleep, probe OEM extensions first and
return errors instead of raising; the base class polls and bounds time itself.
"""

from __future__ import annotations

import logging
import struct
import threading
from typing import Any

from provisioner.errors import BmcAuthError, BmcCommandError, BmcTransientError, BmcUnreachable
from provisioner.power import pyghmi_fixes
from provisioner.power.base import BootDevice, PowerAction, PowerDriver, PowerState

log = logging.getLogger(__name__)

NETFN_CHASSIS = 0x00
CMD_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
CMD_SET_BOOT_OPTIONS = 0x08
CMD_GET_BOOT_OPTIONS = 0x09
CONTROL = {"off": 0x00, "on": 0x01, "soft": 0x05}
# boot flags parameter 5, byte 2, bits 5:2 (IPMI 2.0 table 28-14)
DEVICE_SELECTOR = {"network": 0x04, "disk": 0x08}
SELECTOR_NAMES = {0x04: "network", 0x08: "disk", 0x00: "default"}
# completion codes a busy BMC gives; worth a retry
TRANSIENT_CODES = {0xC0, 0xC3, 0xCE, 0xCF, 0xFF}
AUTH_WORDS = ("password", "unauthorized name", "unauthorized role", "invalid role", "rakp")
TRANSIENT_WORDS = ("insufficient resources", "busy", "no longer connected")


class IpmiPower(PowerDriver):
    """A BMC that speaks IPMI 2.0 over LAN (also the virtual BMC).

    One session per public operation, closed at its end: pyghmi caches sessions
    per process, and a cached session to a BMC that has since restarted (or a new
    BMC on the same address) waits out retries before it notices. Logging in
    costs a few milliseconds; a stale session costs the whole timeout.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ipmi: Any = None

    def _close(self, failed: bool) -> None:
        if failed:
            self._discard()
            return
        ipmi, self._ipmi = self._ipmi, None
        if ipmi is not None:
            try:
                ipmi.ipmi_session.logout()
            except Exception:  # the session is dropped anyway
                log.debug("node %s: logout failed", self.node, exc_info=True)

    def _discard(self) -> None:
        """Forget a session that failed, so the next try logs in afresh.

        Done in the background: pyghmi's logout waits for a command still in
        flight on that session (up to its retry budget) and we never wait for a
        BMC that is not answering.
        """
        ipmi, self._ipmi = self._ipmi, None
        if ipmi is None:
            return

        def drop() -> None:
            try:
                ipmi.ipmi_session._mark_broken()
            except Exception:
                log.debug("node %s: dropping the session failed", self.node, exc_info=True)

        threading.Thread(target=drop, name=f"ipmi-drop-{self.node}", daemon=True).start()

    def _command(self) -> Any:
        from pyghmi import exceptions as pyghmi_exc
        from pyghmi.ipmi import command

        if self._ipmi is not None and not self._ipmi.ipmi_session.broken:
            return self._ipmi
        pyghmi_fixes.apply()
        ep = self.endpoint
        try:
            # bytes, not str: str credentials can make a second login spin forever
            self._ipmi = command.Command(
                bmc=ep.address,
                userid=ep.user.encode(),
                password=ep.password.get_secret_value().encode(),
                port=ep.port,
                keepalive=False,
            )
            return self._ipmi
        except pyghmi_exc.IpmiException as exc:
            raise self._map_error(exc, "login") from exc
        except (struct.error, IndexError, TypeError) as exc:
            raise BmcCommandError(
                self.node, ep.label, f"login: protocol error ({type(exc).__name__})"
            ) from exc

    def _raw(self, command: int, data: tuple[int, ...] = ()) -> list[int]:
        from pyghmi import exceptions as pyghmi_exc

        ipmi = self._command()
        try:
            response = ipmi.raw_command(netfn=NETFN_CHASSIS, command=command, data=data)
        except pyghmi_exc.IpmiException as exc:
            self._discard()
            raise self._map_error(exc, f"command 0x{command:02x}") from exc
        if "error" in response:
            code = response.get("code")
            message = str(response["error"])
            if code == 0xFFFF or message == "timeout":
                self._discard()
                raise BmcUnreachable(self.node, self.endpoint.label, "BMC stopped answering")
            if code in TRANSIENT_CODES:
                raise BmcTransientError(self.node, self.endpoint.label, message)
            raise BmcCommandError(
                self.node, self.endpoint.label, f"command 0x{command:02x} refused: {message}"
            )
        return list(response.get("data", []))

    def _map_error(self, exc: Exception, what: str) -> Exception:
        text = str(exc.args[0]) if exc.args and exc.args[0] is not None else ""
        lower = text.lower()
        label = self.endpoint.label
        if not text or lower == "timeout" or "session failed" in lower:
            return BmcUnreachable(
                self.node, label, f"{what}: no answer (BMC down, wrong address or wrong user)"
            )
        if any(word in lower for word in TRANSIENT_WORDS):
            return BmcTransientError(self.node, label, f"{what}: {text}")
        if any(word in lower for word in AUTH_WORDS):
            return BmcAuthError(self.node, label, f"{what}: credentials rejected ({text})")
        return BmcCommandError(self.node, label, f"{what}: {text}")

    # -- primitives --
    def _check(self) -> None:
        self._read_power()

    def _read_power(self) -> PowerState:
        data = self._raw(CMD_CHASSIS_STATUS)
        if not data:
            raise BmcCommandError(self.node, self.endpoint.label, "empty chassis status")
        return "on" if data[0] & 0x01 else "off"

    def _send_power(self, action: PowerAction) -> None:
        self._raw(CMD_CHASSIS_CONTROL, (CONTROL[action],))

    def _write_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        # parameter 3 = 0x08: do not clear the valid bit on the 60 s timer
        self._raw(CMD_SET_BOOT_OPTIONS, (0x03, 0x08))
        flags = 0x80 | (0x40 if persistent else 0) | (0x20 if uefi else 0)
        self._raw(CMD_SET_BOOT_OPTIONS, (0x05, flags, DEVICE_SELECTOR[device], 0, 0, 0))

    def boot_device(self) -> dict[str, Any]:
        """What the BMC reports for the next boot: device, persistent, uefi, valid."""

        def read() -> dict[str, Any]:
            data = self._raw(CMD_GET_BOOT_OPTIONS, (0x05, 0, 0))
            if len(data) < 4:
                raise BmcCommandError(self.node, self.endpoint.label, "short boot options reply")
            flags, selector = data[2], data[3] & 0x3C
            return {
                "device": SELECTOR_NAMES.get(selector, f"selector 0x{selector:02x}"),
                "valid": bool(flags & 0x80),
                "persistent": bool(flags & 0x40),
                "uefi": bool(flags & 0x20),
            }

        with self._operation("get boot device"):
            return self._call("get boot device", read, self._deadline())
