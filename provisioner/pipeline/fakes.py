"""Backends that touch nothing outside: every call recorded, any call scriptable to fail.

``FakeBackends`` implements the pipeline's ``Backends`` protocol the way httpx's
MockTransport stands in for the network: the pipeline above it is the real one,
only the edges (BMCs, DNS server, dnsmasq host files) are replaced. It serves a
dry run of a deployment (what would be called, in which order), a simulated
site whose nodes react to their power cycle (``listener``), and the pipeline's
unit tests, which assert the exact sequence of calls.

A scripted failure raises the error a real backend would raise for that call
(``BmcUnreachable`` for power and boot device, ``DnsUnreachable`` for DNS,
``DnsmasqError`` for DHCP) or any exception given, once, a number of times or
always; ``after=True`` makes the call take effect first (the BMC did power cycle,
but the answer was lost or the caller died), ``after=False`` fails before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from provisioner.errors import BmcUnreachable, DnsmasqError, DnsUnreachable
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import BootDevice

log = logging.getLogger(__name__)

Action = Literal[
    "publish_dns",
    "unpublish_dns",
    "add_dhcp_host",
    "remove_dhcp_host",
    "set_boot_device",
    "power_cycle",
    "power_off",
]
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class Call:
    """One backend call as the pipeline made it."""

    action: Action
    node: str
    detail: str = ""  # set_boot_device: "network once", "disk persistent"
    error: str | None = None  # the failure's class name, if it failed

    def __str__(self) -> str:
        text = f"{self.action} {self.node}"
        if self.detail:
            text += f" {self.detail}"
        return f"{text} !{self.error}" if self.error else text


@dataclass
class _Fault:
    error: BaseException | None
    times: int | None  # None: every call
    after: bool


class FakeBackends:
    def __init__(self, listener: Callable[[Call], None] | None = None) -> None:
        """``listener`` hears every call that took effect (after it did), in order."""
        self.listener = listener
        self.calls: list[Call] = []
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._lock = threading.Lock()
        #: node -> DNS records its unpublish leaves in place (not the site's), as the real
        #: backend reports them
        self.dns_left: dict[str, list[str]] = {}

    # ---- scripting and inspection ---------------------------------------------
    def fail(
        self,
        action: Action,
        node: str,
        error: BaseException | None = None,
        times: int | None = 1,
        after: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``action`` for ``node`` fail (None: all)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown backend action {action!r}; one of {', '.join(ACTIONS)}")
        with self._lock:
            self._faults[(action, node)] = _Fault(error, times, after)

    def heal(self, action: Action | None = None, node: str | None = None) -> None:
        """Forget scripted failures (of one action and/or node, or all)."""
        with self._lock:
            for key in list(self._faults):
                if (action is None or key[0] == action) and (node is None or key[1] == node):
                    del self._faults[key]

    def log(self, node: str | None = None) -> list[str]:
        """The calls as short lines ("power_cycle ctl1"), of one node or all."""
        with self._lock:
            return [str(c) for c in self.calls if node is None or c.node == node]

    def count(self, action: Action, node: str | None = None) -> int:
        """Calls of ``action`` that took effect (failed ones not counted)."""
        with self._lock:
            return sum(
                1
                for c in self.calls
                if c.action == action and c.error is None and (node is None or c.node == node)
            )

    # ---- the Backends protocol -------------------------------------------------
    def publish_dns(self, site: Site, node: Node) -> None:
        self._call("publish_dns", node.name)

    def unpublish_dns(self, site: Site, node: Node) -> list[str]:
        self._call("unpublish_dns", node.name)
        return list(self.dns_left.get(node.name, []))

    def add_dhcp_host(self, site: Site, node: Node) -> None:
        self._call("add_dhcp_host", node.name)

    def remove_dhcp_host(self, site: Site, node: Node) -> None:
        self._call("remove_dhcp_host", node.name)

    def set_boot_device(self, site: Site, node: Node, device: BootDevice, persistent: bool) -> None:
        self._call(
            "set_boot_device", node.name, f"{device} {'persistent' if persistent else 'once'}"
        )

    def power_cycle(self, site: Site, node: Node) -> None:
        self._call("power_cycle", node.name)

    def power_off(self, site: Site, node: Node) -> None:
        self._call("power_off", node.name)

    # ---- machinery -------------------------------------------------------------
    def _call(self, action: Action, node: str, detail: str = "") -> None:
        with self._lock:
            fault = self._take_fault(action, node)
        error = None if fault is None else (fault.error or _default_error(action, node))
        if error is not None and fault is not None and not fault.after:
            self._record(Call(action, node, detail, type(error).__name__))
            log.info("node %s: fake backend: %s fails (scripted)", node, action)
            raise error
        call = Call(action, node, detail)
        self._record(call)
        log.info("node %s: fake backend: %s%s", node, action, f" {detail}" if detail else "")
        if self.listener is not None:
            self.listener(call)
        if error is not None:
            log.info("node %s: fake backend: %s done, then fails (scripted)", node, action)
            raise error

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _take_fault(self, action: str, node: str) -> _Fault | None:
        fault = self._faults.get((action, node))
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[(action, node)]
        return fault


def _default_error(action: Action, node: str) -> Exception:
    """What the real backend raises when its peer does not answer."""
    if action in ("set_boot_device", "power_cycle", "power_off"):
        return BmcUnreachable(node, "fake BMC", f"{action.replace('_', ' ')}: no answer")
    if action in ("publish_dns", "unpublish_dns"):
        return DnsUnreachable(f"node {node}: DNS server does not answer (fake backend)")
    return DnsmasqError(f"node {node}: DHCP host entry not written (fake backend)")
