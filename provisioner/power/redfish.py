"""Redfish power driver on sushy.

Why sushy and not pyghmi's Redfish client: sushy is what OpenStack Ironic drives
Redfish BMCs with, so its quirks handling (boot override modes, task monitors,
session-or-basic auth fallback, server-side retries) is exercised on real
hardware every day; it speaks plain HTTP and HTTPS with ordinary ``verify``
semantics; and it raises typed errors (AccessError, ConnectionError,
ServerSideError) that map cleanly onto ours. pyghmi's client is HTTPS-only with a
mandatory certificate callback and reports failures as generic exceptions.

``bmc.address`` is a host name or IP (https://ADDRESS:PORT), or a URL: with
``http://`` the BMC is reached without TLS; a path ending in ``/Systems/<id>``
picks that system, otherwise the BMC's only (first) system is used.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from provisioner.errors import BmcAuthError, BmcCommandError, BmcTransientError, BmcUnreachable
from provisioner.power.base import BootDevice, PowerAction, PowerDriver, PowerState

log = logging.getLogger(__name__)

_SYSTEM_RE = re.compile(r"/Systems/([^/]+)/?$")


class RedfishPower(PowerDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn: Any = None
        self._system_path: str | None = None
        self._lock = threading.Lock()

    def _base_and_system(self) -> tuple[str, str | None]:
        ep = self.endpoint
        if "://" not in ep.address:
            return f"https://{ep.address}:{ep.port}", None
        url = urlsplit(ep.address)
        host = url.hostname or ""
        port = url.port or ep.port
        match = _SYSTEM_RE.search(url.path)
        return f"{url.scheme}://{host}:{port}", (url.path if match else None)

    def _system(self) -> Any:
        import sushy
        from sushy import exceptions as sushy_exc

        with self._lock:
            try:
                if self._conn is None:
                    base, system_path = self._base_and_system()
                    self._conn = sushy.Sushy(
                        base,
                        verify=self.endpoint.verify_tls,
                        # basic auth: no session left behind per call; BMCs have
                        # few session slots and CLI runs are short-lived
                        auth=sushy.auth.BasicAuth(
                            self.endpoint.user, self.endpoint.password.get_secret_value()
                        ),
                        server_side_retries=0,
                        read_timeout=max(1, int(self.settings.timeout)),
                        connect_timeout=max(1, int(self.settings.timeout)),
                    )
                    self._system_path = system_path
                if self._system_path is None:
                    members = sorted(self._conn.get_system_collection().members_identities)
                    if not members:
                        raise BmcCommandError(self.node, self.endpoint.label, "BMC has no system")
                    self._system_path = members[0]
                return self._conn.get_system(self._system_path)
            except sushy_exc.SushyError as exc:
                self._conn = None
                raise self._map_error(exc, "connect") from exc

    def _map_error(self, exc: Exception, what: str) -> Exception:
        from sushy import exceptions as sushy_exc

        label = self.endpoint.label
        name = type(exc).__name__
        if isinstance(exc, sushy_exc.AccessError):
            return BmcAuthError(self.node, label, f"{what}: credentials rejected (HTTP 401/403)")
        if isinstance(exc, sushy_exc.ConnectionError):
            return BmcUnreachable(self.node, label, f"{what}: cannot connect ({name})")
        if isinstance(exc, sushy_exc.ServerSideError):
            return BmcTransientError(self.node, label, f"{what}: BMC error {name}")
        return BmcCommandError(self.node, label, f"{what}: {name}: {exc}")

    def _do(self, what: str, fn: Any) -> Any:
        from sushy import exceptions as sushy_exc

        try:
            return fn(self._system())
        except sushy_exc.SushyError as exc:
            raise self._map_error(exc, what) from exc

    # -- primitives --
    def _check(self) -> None:
        self._read_power()

    def _read_power(self) -> PowerState:
        state = self._do("power status", lambda system: system.power_state)
        value = str(getattr(state, "value", state)).lower()
        # 'PoweringOff' still has power; 'PoweringOn' does not count as on yet
        return "on" if value in ("on", "poweringoff", "powering off") else "off"

    def _send_power(self, action: PowerAction) -> None:
        import sushy

        reset = {
            "on": sushy.ResetType.ON,
            "off": sushy.ResetType.FORCE_OFF,
            "soft": sushy.ResetType.GRACEFUL_SHUTDOWN,
        }[action]
        self._do(f"power {action}", lambda system: system.reset_system(reset))

    def _write_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        import sushy

        target = sushy.BootSource.PXE if device == "network" else sushy.BootSource.HDD
        enabled = (
            sushy.BootSourceOverrideEnabled.CONTINUOUS
            if persistent
            else sushy.BootSourceOverrideEnabled.ONCE
        )
        mode = sushy.BootSourceOverrideMode.UEFI if uefi else sushy.BootSourceOverrideMode.LEGACY
        self._do(
            f"set boot device {device}",
            lambda system: system.set_system_boot_options(
                target=target, enabled=enabled, mode=mode
            ),
        )

    def boot_device(self) -> dict[str, Any]:
        def read(system: Any) -> dict[str, Any]:
            boot = system.boot
            target = getattr(boot.target, "value", boot.target)
            enabled = getattr(boot.enabled, "value", boot.enabled)
            mode = getattr(boot.mode, "value", boot.mode)
            return {
                "device": {"Pxe": "network", "Hdd": "disk"}.get(str(target), str(target)),
                "valid": enabled in ("Once", "Continuous"),
                "persistent": enabled == "Continuous",
                "uefi": mode == "UEFI",
            }

        with self._operation("get boot device"):
            return self._call(
                "get boot device", lambda: self._do("get boot", read), self._deadline()
            )
