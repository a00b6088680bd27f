"""Bundle delivery by SSH push, with the system ssh client (key authentication only).

The bundle travels as a tar stream into ``tar -x`` on the node, unpacked into a
fresh folder that then replaces ``remote_dir``, so a half-copied bundle is never
in place. (The pull endpoint lives in bootserver/callback_routes.py; the Ansible
inventory in roles/kolla.py.)
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from provisioner import programs
from provisioner.errors import DeliveryError
from provisioner.roles.bundles import BundleStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SshPush:
    port: int = 22
    remote_dir: str = "/etc/provisioner/bundle"
    identity: Path | None = None
    known_hosts: Path | None = None
    #: a freshly installed node has a new host key: accept it once, refuse a changed one
    host_key_checking: str = "accept-new"
    timeout_s: float = 120.0
    extra_options: tuple[str, ...] = field(default_factory=tuple)

    def ssh_command(self, target: str, remote_command: str) -> list[str]:
        cmd = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        cmd += ["-o", f"StrictHostKeyChecking={self.host_key_checking}"]
        if self.known_hosts is not None:
            cmd += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity is not None:
            cmd += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for option in self.extra_options:
            cmd += ["-o", option]
        return [*cmd, "--", target, remote_command]

    def remote_script(self) -> str:
        final = shlex.quote(self.remote_dir.rstrip("/"))
        return (
            f'set -e; new={final}.new.$$; rm -rf "$new"; mkdir -p "$new"; '
            f'tar -xzf - -C "$new"; rm -rf {final}.old; '
            f"if [ -e {final} ]; then mv {final} {final}.old; fi; "
            f'mv "$new" {final}; rm -rf {final}.old'
        )

    def push(self, node: str, bundles: BundleStore, target: str) -> None:
        """Copy the node's bundle to ``target`` ([user@]host)."""
        data = bundles.tarball(node)
        cmd = self.ssh_command(target, self.remote_script())
        log.info("node %s: pushing bundle to %s:%s", node, target, self.remote_dir)
        try:
            result = subprocess.run(
                programs.command(cmd), input=data, capture_output=True, timeout=self.timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            raise DeliveryError(
                f"node {node}: bundle push to {target} timed out after {self.timeout_s:g}s"
            ) from exc
        except OSError as exc:
            raise DeliveryError(f"node {node}: cannot run ssh: {exc}") from exc
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip().splitlines()
            raise DeliveryError(
                f"node {node}: bundle push to {target} failed (ssh exit {result.returncode}): "
                + (detail[-1] if detail else "no message")
            )
        log.info("node %s: bundle pushed to %s", node, target)
