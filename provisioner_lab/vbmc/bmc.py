"""The IPMI-over-LAN face of a virtual node, on pyghmi's BMC server.

pyghmi's ``Bmc`` ignores the persistent and EFI boot flags and reports every
boot device as valid; this class answers boot options from the node's real
boot-flag state (IPMI 2.0 table 28-14), so ``ipmitool chassis bootparam get 5``
and the project's driver both see what the next boot will do.
"""

from __future__ import annotations

import logging
from typing import Any

from pyghmi.ipmi.bmc import Bmc

from provisioner_lab.vbmc.node import VirtualNode

log = logging.getLogger(__name__)

SELECTORS = {"network": 0x04, "disk": 0x08}
DEVICES = {0x01: "network", 0x02: "disk"}  # selector bits 5:2, shifted down


class VirtualBmc(Bmc):
    def __init__(self, node: VirtualNode, user: str, password: str, address: str, port: int):
        super().__init__({user: password}, port=port, address=address)
        self.node = node

    # chassis power (pyghmi calls these from control_chassis / get_chassis_status)
    def get_power_state(self) -> str:
        return self.node.power_state()

    def power_on(self) -> int:
        self.node.power_on()
        return 0

    def power_off(self) -> int:
        self.node.power_off()
        return 0

    def power_cycle(self) -> int:
        if self.node.power_state() == "off":
            return 0xD5  # cannot execute in the present state (IPMI: cycle needs power on)
        self.node.reset()
        return 0

    def power_reset(self) -> int:
        self.node.reset()
        return 0

    def power_shutdown(self) -> int:
        self.node.soft_off()
        return 0

    def cold_reset(self) -> int:
        return 0

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        param = request["data"][0] & 0x7F
        if param != 5:
            session.send_ipmi_response(code=0x80)  # parameter not supported
            return
        device, persistent, uefi = self.node.boot_flags()
        flags = 0x80 | (0x40 if persistent else 0) | (0x20 if uefi else 0)
        session.send_ipmi_response(data=[1, 5, flags, SELECTORS[device], 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        param = data[0] & 0x7F
        if param in (0, 3, 4):  # set-in-progress, boot info ack, 60 s timer: accepted
            session.send_ipmi_response()
            return
        if param != 5 or len(data) < 3:
            session.send_ipmi_response(code=0x80)
            return
        flags, selector = data[1], (data[2] >> 2) & 0x0F
        if not flags & 0x80 or selector == 0:  # no override: back to the persistent device
            _, _, uefi = self.node.boot_flags()
            self.node.set_boot(self.node.state.boot.persistent, True, uefi)
            session.send_ipmi_response()
            return
        device = DEVICES.get(selector)
        if device is None:
            session.send_ipmi_response(code=0xCC)  # only network and disk exist here
            return
        self.node.set_boot(device, bool(flags & 0x40), bool(flags & 0x20))
        session.send_ipmi_response()
