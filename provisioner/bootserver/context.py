"""What the HTTP blueprints share: the inventory, the store, tokens, settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.content import ContentPaths
from provisioner.inventory import Site
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

    def site(self) -> Site:
        return self.sites.current()

    def content(self) -> ContentPaths:
        return self.site().content_paths()
