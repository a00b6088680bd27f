"""Simulated firmware and installer for lab nodes that need no qemu.

Test equipment, like the lab installer: it speaks the real protocols against
the real boot server — the TFTP fetch of the iPXE binary, the HTTP fetch of
the node's boot script, the kernel/initrd and kickstart fetches, and the
installer's callbacks with the token the boot script carried — but runs in a
Python thread in milliseconds instead of a VM in minutes. Power control comes
from a virtual BMC exactly as for a qemu node.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import re
import shlex
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Behaviour = Literal["normal", "never-callback", "install-fails", "no-network-boot"]
IPXE_BINARY = {"bios": "undionly.kpxe", "uefi": "ipxe.efi"}


@dataclass
class BootScript:
    """What an iPXE script asked for, as far as firmware acts on it."""

    action: Literal["install", "local", "discovery", "unknown"]
    kernel_url: str | None = None
    initrd_urls: list[str] = field(default_factory=list)
    kernel_args: list[str] = field(default_factory=list)

    @property
    def kickstart_url(self) -> str | None:
        for arg in self.kernel_args:
            if arg.startswith(("inst.ks=", "ks=")):
                return arg.split("=", 1)[1]
        return None


def parse_ipxe(script: str) -> BootScript:
    if not script.lstrip().startswith("#!ipxe"):
        return BootScript("unknown")
    kernel, initrds, args = None, [], []
    for raw in script.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, posix=True)
        cmd = words[0]
        if cmd in ("kernel", "chain", "imgexec") and len(words) > 1:
            positional = _positional(words[1:])
            kernel, args = positional[0], positional[1:]
        elif cmd in ("initrd", "imgfetch", "module") and len(words) > 1:
            initrds.append(_positional(words[1:])[0])
        elif cmd == "exit" and kernel is None:
            return BootScript("local")
        elif cmd in ("boot",) and kernel is not None:
            break
    if kernel is None:
        return BootScript("unknown")
    action: Literal["install", "discovery"] = (
        "install" if any(a.startswith(("inst.ks=", "ks=")) for a in args) else "discovery"
    )
    return BootScript(action, kernel, initrds, args)


def _positional(words: list[str]) -> list[str]:
    """Drop iPXE image options (``--name x``, ``-n x``, ``--autofree``...)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--name", "-n", "--timeout", "-t"):
            skip = True
        elif not word.startswith("-"):
            out.append(word)
    return out


class SimFirmwareError(Exception):
    pass


class _FromAddress(urllib.request.HTTPHandler):
    """Plain HTTP sent from a given local address: the node's own, as a real node's
    would be (the boot server hands an install token only to the node's address)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(http.client.HTTPConnection, source_address=(self.address, 0))
        return self.do_open(connection, req)


def _http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int | None = None,
    source: str | None = None,
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if max_bytes is not None:
        req.add_header("Range", f"bytes=0-{max_bytes - 1}")
    opener = urllib.request.build_opener(_FromAddress(source)) if source else None
    open_url = opener.open if opener else urllib.request.urlopen
    try:
        with open_url(req, timeout=timeout) as resp:
            return resp.status, resp.read(max_bytes or -1)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SimFirmwareError(f"{method} {url}: {exc}") from exc


def tftp_fetch(host: str, port: int, filename: str) -> int:
    """Fetch a file over TFTP as PXE firmware does; returns its size."""
    import tftpy

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nbp"
        try:
            tftpy.TftpClient(host, port, options={"blksize": 1468}).download(
                filename, str(out), timeout=5, retries=2
            )
        except Exception as exc:  # tftpy raises bare TftpException and OSErrors
            raise SimFirmwareError(f"TFTP {filename} from {host}:{port}: {exc}") from exc
        return out.stat().st_size


@dataclass
class SimNode:
    """One simulated machine: firmware, installer and an 'installed OS' marker."""

    name: str
    mac: str
    boot_mode: Literal["uefi", "bios"]
    http_base: str  # http://host:port of the boot server
    tftp_host: str
    tftp_port: int
    disk: Path  # a file standing for the disk: holds the installed OS marker
    behaviour: Behaviour = "normal"
    source: str | None = None  # the node's address: its HTTP requests come from it

    def _get(self, url: str, max_bytes: int | None = None) -> tuple[int, bytes]:
        return _http("GET", url, max_bytes=max_bytes, source=self.source)

    def boot(self, device: Literal["network", "disk"]) -> str:
        """One boot from ``device``; returns what happened (for the BMC's log)."""
        if device == "network":
            if self.behaviour == "no-network-boot":
                return "network boot: no DHCP offer (NIC unplugged)"
            tftp_fetch(self.tftp_host, self.tftp_port, IPXE_BINARY[self.boot_mode])
            status, body = self._get(f"{self.http_base}/boot/{self.mac}.ipxe")
            if status != 200:
                return f"network boot: boot script HTTP {status}"
            script = parse_ipxe(body.decode(errors="replace"))
            if script.action == "install":
                return self._install(script)
            if script.action != "local":
                return f"network boot: {script.action} script, nothing to do"
        marker = self._installed_as()
        return f"booted the installed OS of {marker}" if marker else "no bootable disk"

    def _installed_as(self) -> str | None:
        try:
            return json.loads(self.disk.read_text())["node"]
        except (OSError, ValueError, KeyError):
            return None

    def _install(self, script: BootScript) -> str:
        assert script.kernel_url is not None
        for url in (script.kernel_url, *script.initrd_urls):
            status, _ = self._get(url, max_bytes=4096)
            if status not in (200, 206):
                return f"installer: kernel/initrd {url} HTTP {status}"
        ks_url = script.kickstart_url
        if ks_url is None:
            return "installer: no inst.ks= on the kernel line"
        status, ks = self._get(ks_url)
        if status != 200:
            return f"installer: kickstart HTTP {status}"
        token = urllib.parse.parse_qs(urllib.parse.urlparse(ks_url).query).get("token", [""])[0]
        callback = re.search(rb"https?://[^\s\"']+/api/v1/nodes/[^/\s\"']+/callback", ks)
        if callback is None:
            return "installer: the kickstart carries no callback URL"
        url = callback.group(0).decode()
        self._callback(url, token, "started", "simulated installer started")
        if self.behaviour == "never-callback":
            return "installer: hung (simulated)"
        if self.behaviour == "install-fails":
            self._callback(url, token, "failed", "simulated disk error")
            return "installer: failed (simulated)"
        self.disk.write_text(json.dumps({"node": self.name, "kickstart_bytes": len(ks)}))
        self._callback(url, token, "installed", "simulated install complete")
        return "installer: installed, rebooting"

    def _callback(self, url: str, token: str, status: str, message: str) -> None:
        body = json.dumps({"status": status, "message": message}).encode()
        code, _ = _http(
            "POST",
            url,
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            source=self.source,
        )
        log.info("node %s: callback %s -> HTTP %s", self.name, status, code)
