"""Render a node's kickstart: the node's data and partition plan through the templates.

``render_kickstart`` has no side effects: it reads templates, the layout and the
root password hash, and returns text. The token is passed in (the caller owns
build mode); it only ever appears in this node's kickstart, in the callbacks.

Disks: the plan names disk *slots*. By default the kickstart's %pre picks real
disks from the node's hints (by-path, serial, WWN, name, size; smallest or first
non-removable) and writes the storage commands to an include file. With
``disks=["sda", "sdb"]`` the storage commands are printed inline for those disks
instead: what the include would hold on such a machine, useful to review or
when the disks are known.

A profile with ``image:`` installs the image ``provisioner image build`` made
for the node's profile and role: the kickstart carries ``liveimg --url=...
--checksum=<sha256>`` instead of ``url`` and %packages, and its %post installs
a once-only first-boot unit that reports "booted" (install/images.py). The
image must be built before its kickstart can be rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ConfigError, ImageError
from provisioner.install.images import ImageStore, image_name, plan_image
from provisioner.install.partitioning import DISK_GB_BYTES, PartitionPlan, plan_for
from provisioner.inventory.models import Node, Site
from provisioner.templating import render

log = logging.getLogger(__name__)

STORAGE_INCLUDE = "/tmp/provisioner-storage.ks"
TOKEN_PLACEHOLDER = "BUILD-MODE-OFF-NO-TOKEN"


def callback_url(base_url: str, node: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/nodes/{node}/callback"


@dataclass(frozen=True)
class SiteSecrets:
    """What a site's nodes share in their kickstarts, resolved once."""

    root_password_hash: str

    @classmethod
    def of(cls, site: Site) -> SiteSecrets:
        ref = site.defaults.root_password_hash
        value = site.secret(ref, "defaults: root_password_hash").get_secret_value()
        return cls(value)

    def __repr__(self) -> str:
        return "SiteSecrets(<hidden>)"


def network_context(site: Site, node: Node) -> dict[str, Any]:
    net = site.network
    extra = node.network
    device = extra.bond.name if extra.bond else node.primary_mac
    return {
        "device": device,
        "mac": node.primary_mac,
        "ip": str(node.ip),
        "prefix": net.cidr.prefixlen,
        "netmask": str(net.cidr.netmask),
        "gateway": str(net.gateway) if net.gateway else None,
        "nameservers": [str(s) for s in net.dns_servers],
        "bond": extra.bond.model_dump() if extra.bond else None,
        "vlan": extra.vlan,
        "mtu": extra.mtu,
    }


def image_context(
    site: Site, node: Node, profile_name: str, images: ImageStore | None, base_url: str
) -> dict[str, Any] | None:
    """``liveimg`` of an image profile: the built image's URL and sha256 (None: packages)."""
    if site.profiles[profile_name].image is None:
        return None
    plan = plan_image(site, profile_name, node.role)
    built = images.get(plan.key) if images is not None else None
    if built is None:
        raise ImageError(
            f"node {node.name}: profile {profile_name}: image {plan.key} for role {node.role} "
            f"is not built; run: provisioner image build --profile {profile_name} "
            f"--role {node.role}"
        )
    return {
        "name": image_name(profile_name, node.role),
        "key": built.key,
        "url": f"{base_url.rstrip('/')}/{built.url_path}",
        "checksum": built.sha256,
        "apply_bundle": site.profiles[profile_name].image.apply_bundle,  # type: ignore[union-attr]
    }


def disk_context(node: Node, plan: PartitionPlan) -> dict[str, Any]:
    hints = node.disks
    wwn = (hints.wwn or "").lower().removeprefix("0x") or None
    pinned = [
        f"{k}={v}"
        for k, v in (
            ("by_path", hints.by_path),
            ("serial", hints.serial),
            ("wwn", hints.wwn),
            ("name", hints.name),
        )
        if v
    ]
    return {
        "by_path": hints.by_path,
        "serial": hints.serial,
        "wwn": wwn,
        "name": hints.name,
        "pinned": ", ".join(pinned),
        "min_bytes": (hints.min_size_gb or 0) * DISK_GB_BYTES,
        "os_min_bytes": plan.os_disk_min_bytes,
        "os_count": len(plan.os_disks),
        "data_count": len(plan.data_disks),
    }


def kickstart_context(
    site: Site,
    node: Node,
    plan: PartitionPlan,
    secrets: SiteSecrets,
    *,
    token: str,
    base_url: str,
    disks: Sequence[str] | None = None,
    image: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the templates may use (pure data); ``image``: see ``image_context``."""
    role = site.roles[node.role]
    profile_name = site.profile_of(node)
    if profile_name is None or profile_name not in site.profiles:
        raise ConfigError(f"node {node.name}: profile: no usable profile ('{profile_name}')")
    profile = site.profiles[profile_name]
    if disks is not None and len(disks) < len(plan.disks):
        raise ConfigError(
            f"node {node.name}: --disks: the plan uses {len(plan.disks)} disk(s), "
            f"{len(disks)} given"
        )
    disk_names = list(disks) if disks is not None else [f"${{DISK_{i}}}" for i in plan.disks]
    return {
        "node": {
            "name": node.name,
            "fqdn": site.fqdn(node),
            "role": node.role,
            "role_kind": site.role_kind(node.role),
            "rack": node.rack,
            "boot_mode": site.boot_mode_of(node),
            "macs": list(node.macs),
        },
        "site": {"name": site.site.name, "domain": site.site.domain.rstrip(".")},
        "network": network_context(site, node),
        "os": {
            "profile": profile_name,
            "family": profile.os_family,
            "repo": profile.repo,
            "image": image,
        },
        "lang": site.defaults.language,
        "timezone": site.defaults.timezone,
        "root_password_hash": secrets.root_password_hash,
        "ssh_keys": list(site.defaults.ssh_keys),
        "packages": list(role.packages),
        "role_settings": dict(role.settings),
        "plan": plan,
        "disk": disk_context(node, plan),
        "disk_names": disk_names,
        "inline_storage": disks is not None,
        "storage_include": STORAGE_INCLUDE,
        "callback": {"url": callback_url(base_url, node.name), "token": token},
        "base_url": base_url.rstrip("/"),
    }


class KickstartRenderer:
    """Renders many nodes of one site (the root hash and search path resolved once)."""

    def __init__(self, site: Site, images: ImageStore | None = None) -> None:
        self.site = site
        self.images = images
        self.content = site.content_paths()
        self.search_path: list[Path] = self.content.search_path("kickstart")
        self.secrets = SiteSecrets.of(site)

    def plan(self, node: Node) -> PartitionPlan:
        return plan_for(self.site, node, self.content)

    def render(
        self, node: Node, *, token: str, base_url: str, disks: Sequence[str] | None = None
    ) -> str:
        plan = self.plan(node)
        profile = self.site.profile_of(node)
        image = None
        if profile is not None and profile in self.site.profiles:
            image = image_context(self.site, node, profile, self.images, base_url)
        context = kickstart_context(
            self.site,
            node,
            plan,
            self.secrets,
            token=token,
            base_url=base_url,
            disks=disks,
            image=image,
        )
        template = self.site.profiles[context["os"]["profile"]].kickstart
        text = render(self.search_path, template, context, f"node {node.name}")
        log.debug("node %s: kickstart rendered (%d bytes)", node.name, len(text))
        return text


def render_kickstart(
    site: Site,
    node: Node,
    *,
    token: str,
    base_url: str,
    disks: Sequence[str] | None = None,
    images: ImageStore | None = None,
) -> str:
    """The kickstart of ``node`` (see the module docstring for ``disks`` and images)."""
    renderer = KickstartRenderer(site, images)
    return renderer.render(node, token=token, base_url=base_url, disks=disks)
