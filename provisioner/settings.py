"""Run-time settings: where site.yaml and the state live. Passed in, never global.

``StateDir`` names every file and folder under the state directory: a module
that keeps something there asks it for the path instead of spelling the name,
so the layout can be read (and changed) in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/provisioner")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "provisioner"


@dataclass(frozen=True)
class StateDir:
    """The layout of the state directory (paths only: nothing here touches the disk)."""

    root: Path

    # -- the node state ------------------------------------------------------------
    @property
    def db(self) -> Path:
        """The SQLite store (unless --db-url points elsewhere)."""
        return self.root / "provisioner.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def nodes_changed(self) -> Path:
        """The store's change beacon: readers of node rows in other processes (state/beacon.py)."""
        return self.root / "nodes.changed"

    @property
    def log(self) -> Path:
        return self.root / "provisioner.log"

    # -- secrets the provisioner makes for itself (mode 0600, state/keys.py) -------
    @property
    def deploy_token_key(self) -> Path:
        """The HMAC key of the per-deploy tokens (state/tokens.py)."""
        return self.root / "deploy-token.key"

    @property
    def api_token(self) -> Path:
        """The admin token of the daemon's REST API."""
        return self.root / "api.token"

    @property
    def daemon_file(self) -> Path:
        """Where the running daemon listens (JSON: url, pid)."""
        return self.root / "daemon.json"

    # -- the boot server -----------------------------------------------------------
    @property
    def boot_files(self) -> Path:
        """Kernels and initrds served under /files/ (unless serve --boot-files)."""
        return self.root / "boot-files"

    @property
    def last_good_site(self) -> Path:
        """The site serve runs with, as JSON (no secrets): what its HTTP side starts from
        when it restarts while site.yaml is broken (inventory/source.py)."""
        return self.root / "site.last-good.json"

    @property
    def dns_memo(self) -> Path:
        """The zones' serials when they last held what the site wants (ddns/memo.py)."""
        return self.root / "dns-memo.json"

    @property
    def site_cache(self) -> Path:
        """Validated sites, pickled under the hash of their text (inventory/sitecache.py)."""
        return self.root / "site-cache"

    @property
    def tftp(self) -> Path:
        """The TFTP root: iPXE binaries staged from the distribution's package."""
        return self.root / "tftp"

    @property
    def dhcp(self) -> Path:
        """dnsmasq's folder: its conf, host files, leases and pidfile (dhcp.hosts.DhcpPaths)."""
        return self.root / "dhcp"

    @property
    def images(self) -> Path:
        """OS images (install/images.py): one folder per input digest, served under /images/."""
        return self.root / "images"

    # -- role bundles ----------------------------------------------------------------
    @property
    def bundles(self) -> Path:
        """Generated bundles, one folder per node."""
        return self.root / "bundles"

    def bundle(self, node: str) -> Path:
        return self.bundles / node

    @property
    def bundle_tokens(self) -> Path:
        """SHA-256 of each node's spent deploy token, so it may still pull its bundle."""
        return self.root / "bundle-tokens"

    # -- the lab add-on (provisioner_lab) ------------------------------------------
    @property
    def lab(self) -> Path:
        return self.root / "lab"

    @property
    def vbmc(self) -> Path:
        """Virtual BMCs' state (power, boot device) when run outside a lab."""
        return self.root / "vbmc"

    def serial_log(self, node: str) -> Path:
        """A lab node's serial console (qemu writes it; the dashboard shows its tail)."""
        return self.root / "serial" / f"{node}.log"


@dataclass(frozen=True)
class Settings:
    site_path: Path
    state_dir: Path
    db_url: str | None = None

    @property
    def state(self) -> StateDir:
        return StateDir(self.state_dir)

    @property
    def log_path(self) -> Path:
        return self.state.log
