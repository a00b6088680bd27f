"""Which iPXE script a MAC gets, and its text. Pure: no store, no HTTP.

``decide`` picks install / local / discovery / unknown from the site and the
node's record; ``BootTemplates.render`` fills the pxe/ template found first on
the content search path (a site's copies win), in a sandbox with
StrictUndefined so a typo in a template is an error, not an empty string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import TemplateError

from provisioner.errors import BootTemplateError
from provisioner.errors import TemplateError as UnsafeValueError
from provisioner.inventory import Site
from provisioner.inventory.models import Node
from provisioner.state.machine import BootScript
from provisioner.templating import environment

#: the script kinds; also the event name of the BOOT_SCRIPT event the route records
BootKind = BootScript
TEMPLATES: dict[BootKind, str] = {
    BootScript.INSTALL: "boot.ipxe.j2",
    BootScript.LOCAL: "local.ipxe.j2",
    BootScript.DISCOVERY: "discovery.ipxe.j2",
    BootScript.UNKNOWN: "unknown.ipxe.j2",
}


@dataclass(frozen=True)
class BootDecision:
    kind: BootKind
    mac: str
    node: Node | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return TEMPLATES[self.kind]

    @property
    def message(self) -> str:
        """For people reading the event log; the pipeline reads ``kind`` (the event name)."""
        what = {BootScript.LOCAL: "local disk"}.get(self.kind, self.kind.value)
        return f"boot script served ({what})"


def file_url(base_url: str, ref: str) -> str:
    """A profile's kernel/initrd: a URL as is, else a path under /files/."""
    if "://" in ref:
        return ref
    return f"{base_url}/files/{ref.lstrip('/')}"


def decide(
    site: Site,
    mac: str,
    node: Node | None,
    build_mode: bool,
    token: str | None,
    base_url: str,
) -> BootDecision:
    """What ``mac`` boots. An unknown MAC never gets anyone's install."""
    common: dict[str, Any] = {"mac": mac, "base_url": base_url, "site_name": site.site.name}
    if node is None:
        if site.network.unknown_macs != "discover":
            return BootDecision(BootScript.UNKNOWN, mac, None, common)
        env = site.discovery.environment
        common["discovery"] = env
        if env is not None:
            initrd_url = file_url(base_url, env.initrd)
            common.update(
                kernel_url=file_url(base_url, env.kernel),
                initrd_url=initrd_url,
                initrd_name=PurePosixPath(initrd_url.split("?", 1)[0]).name,
                report_url=f"{base_url}/api/v1/discovery",
            )
        return BootDecision(BootScript.DISCOVERY, mac, None, common)
    common["node"] = node
    if not build_mode or token is None:
        return BootDecision(BootScript.LOCAL, mac, node, common)
    profile_name = site.profile_of(node)
    if profile_name is None or profile_name not in site.profiles:
        raise BootTemplateError(f"node {node.name}: profile: none set (or unknown), cannot install")
    profile = site.profiles[profile_name]
    initrd_url = file_url(base_url, profile.initrd)
    common.update(
        profile=profile,
        profile_name=profile_name,
        kernel_url=file_url(base_url, profile.kernel),
        initrd_url=initrd_url,
        initrd_name=PurePosixPath(initrd_url.split("?", 1)[0]).name,
        ks_url=f"{base_url}/ks/{node.name}?token={token}",
        # dracut's ifname=NAME:MAC: the installed system names its NIC as the site does
        # (keepalived's VRRP interface); a bond's members are named by the kickstart
        ifname=f"{node.network.interface}:{node.primary_mac}"
        if node.network.interface and node.network.bond is None
        else None,
    )
    return BootDecision(BootScript.INSTALL, mac, node, common)


class BootTemplates:
    """Renders pxe/ templates in the project's one sandboxed Jinja2 environment
    (``provisioner.templating``: StrictUndefined, ``<# #>`` comments, cached per
    content search path)."""

    def render(self, decision: BootDecision, search_path: list[Path]) -> str:
        who = f"node {decision.node.name}" if decision.node else f"MAC {decision.mac}"
        try:
            template = environment(search_path).get_template(decision.template)
            text = template.render(**decision.context)
        except UnsafeValueError as exc:  # a filter refused a value (templating.ipxe)
            raise BootTemplateError(f"{who}: pxe/{decision.template}: {exc}") from exc
        except TemplateError as exc:
            raise BootTemplateError(
                f"{who}: pxe/{decision.template}: {type(exc).__name__}: {exc}"
            ) from exc
        return text if text.endswith("\n") else text + "\n"
