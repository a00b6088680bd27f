"""Network namespaces for tests that need several hosts on several layer-2 networks.

``ip`` makes the namespaces, bridges and veth pairs; ``entered`` moves the calling
thread (only it: a network namespace is a per-thread attribute on Linux) into a
namespace, so the sockets it opens and the processes it starts live there, and
``in_namespace`` runs a function in a fresh thread inside one (a node's own
HTTP requests, from its own address on its own network).
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from tests.functional.bootserver_support import sh

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered(ns: str) -> Iterator[None]:
    """The calling thread inside network namespace ``ns`` for the block, then back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


def in_namespace(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` run by a thread inside ``ns`` (its sockets are that namespace's)."""

    def inside() -> T:
        with entered(ns):
            return fn()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(inside).result()


@dataclass
class Namespaces:
    """Namespaces made by one test, named with a random suffix and deleted at the end."""

    prefix: str
    suffix: str = field(default_factory=lambda: secrets.token_hex(2))
    made: list[str] = field(default_factory=list)
    _veths: int = 0

    def add(self, role: str) -> str:
        ns = f"{self.prefix}{role}{self.suffix}"
        sh("ip", "netns", "add", ns)
        self.made.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def bridge(self, ns: str, name: str, *addresses: str) -> None:
        sh("ip", "-n", ns, "link", "add", name, "type", "bridge")
        for address in addresses:
            sh("ip", "-n", ns, "addr", "add", address, "dev", name)
        sh("ip", "-n", ns, "link", "set", name, "up")

    def plug(
        self, ns: str, bridge: str, host: str, ifname: str, *addresses: str, mac: str | None = None
    ) -> None:
        """A veth from ``bridge`` in ``ns`` to interface ``ifname`` of namespace ``host``."""
        self._veths += 1
        port = f"{self.prefix}v{self.suffix}{self._veths}"
        sh("ip", "-n", ns, "link", "add", port, "type", "veth", "peer", "name", ifname,
           "netns", host)  # fmt: skip
        sh("ip", "-n", ns, "link", "set", port, "master", bridge, "up")
        if mac is not None:
            sh("ip", "-n", host, "link", "set", ifname, "address", mac)
        for address in addresses:
            sh("ip", "-n", host, "addr", "add", address, "dev", ifname)
        sh("ip", "-n", host, "link", "set", ifname, "up")

    def delete(self) -> None:
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made.clear()
