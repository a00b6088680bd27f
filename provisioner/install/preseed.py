"""Render a node's Debian/Ubuntu preseed from the same node data and partition plan.

The same context as the kickstart (network, root hash, SSH keys, role packages,
partition plan, callbacks with the node's token) goes through
kickstart/preseed.cfg.j2. debian-installer differs where it must: disks are
picked in partman/early_command from sysfs (busybox, no lsblk), the ESP is not
mirrored, data-disk volume groups are made in late_command, and bonds are left
to the post-install hooks.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from provisioner.errors import ConfigError
from provisioner.install.kickstart import KickstartRenderer, kickstart_context
from provisioner.inventory.models import Node, Site
from provisioner.templating import render

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "preseed.cfg.j2"


def mirror_of(repo: str, node: str) -> dict[str, str]:
    """d-i's mirror/* answers from a repository URL."""
    parts = urlsplit(repo)
    if parts.scheme not in ("http", "https", "ftp") or not parts.netloc:
        raise ConfigError(f"node {node}: profile repo '{repo}' is not an http(s) or ftp URL")
    return {"protocol": parts.scheme, "host": parts.netloc, "directory": parts.path or "/"}


def preseed_template(site: Site, node: Node) -> str:
    """The profile's template when it names a preseed, else the default one."""
    profile = site.profiles.get(site.profile_of(node) or "")
    if profile is not None and "preseed" in profile.kickstart:
        return profile.kickstart
    return DEFAULT_TEMPLATE


class PreseedRenderer(KickstartRenderer):
    def render(  # type: ignore[override]
        self, node: Node, *, token: str, base_url: str
    ) -> str:
        plan = self.plan(node)
        context: dict[str, Any] = kickstart_context(
            self.site, node, plan, self.secrets, token=token, base_url=base_url
        )
        repo = context["os"]["repo"]
        if repo is None:
            raise ConfigError(
                f"node {node.name}: profile {context['os']['profile']}: a preseed installs "
                "from a repo: (debian-installer has no image install)"
            )
        context["mirror"] = mirror_of(repo, node.name)
        text = render(
            self.search_path, preseed_template(self.site, node), context, f"node {node.name}"
        )
        log.debug("node %s: preseed rendered (%d bytes)", node.name, len(text))
        return text


def render_preseed(site: Site, node: Node, *, token: str, base_url: str) -> str:
    return PreseedRenderer(site).render(node, token=token, base_url=base_url)
