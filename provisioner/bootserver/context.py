"""What the HTTP blueprints share: the inventory, the store, tokens, settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.content import ContentPaths
from provisioner.inventory import Site
from provisioner.inventory.models import Node
from provisioner.inventory.source import SiteSource
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens


@dataclass
class ServerContext:
    sites: SiteSource  # follows edits of site.yaml
    store: Store
    tokens: DeployTokens
    boot_files_dir: Path  # kernels and initrds served over HTTP
    images_dir: Path | None = None  # OS images (install/images.py) served under /images/
    #: the provisioning networks this boot server answers (serve --networks); None: all
    networks: frozenset[str] | None = None
    #: this server's state directory (bundles); a SQLite store's folder when not given
    state_dir: Path | None = None

    def site(self) -> Site:
        return self.sites.current()

    def serves(self, site: Site, node: Node) -> bool:
        """This boot server answers the node's network (another instance answers the rest)."""
        return self.networks is None or site.network_name_of(node) in self.networks

    def content(self) -> ContentPaths:
        return self.site().content_paths()
