"""GET /boot/<mac>.ipxe: the iPXE script a MAC boots next.

A node in build mode gets its installer (kernel, initrd, kickstart URL with the
deploy's token); any other known node boots its local disk; an unknown MAC gets
the discovery script (open sites) or a clean exit, never another node's
install. Each request is logged with the node's name and recorded on the node
as a BOOT_SCRIPT event named by the script's kind (written by a background
thread, see bootevents.py), which the pipeline waits for. Nothing else changes:
the route moves no node.

The install script carries the node's live deploy token, and a MAC is no
secret: on a site whose nodes boot with their fixed address
(``network.boot_addresses: fixed``, the default) it is only handed to a client
at the node's own address. Any other client is refused (403, the reason
logged, no event recorded, nothing rendered with the token).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from provisioner.bootserver.bootevents import BootEventWriter
from provisioner.bootserver.bootscript import BootTemplates, decide
from provisioner.bootserver.context import ServerContext
from provisioner.errors import BootTemplateError
from provisioner.inventory.macs import normalise_mac

log = logging.getLogger(__name__)

IPXE_MIMETYPE = "text/plain"


def _script(text: str, status: int = 200) -> Response:
    return Response(
        text, status=status, mimetype=IPXE_MIMETYPE, headers={"Cache-Control": "no-store"}
    )


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("boot", __name__)
    templates = BootTemplates()
    events = BootEventWriter(ctx.store)

    @bp.get("/boot/<raw_mac>.ipxe")
    def boot_script(raw_mac: str) -> Response:
        client = request.remote_addr or "?"
        mac = normalise_mac(raw_mac)
        if mac is None:
            log.warning("boot: client %s asked for a script for %r: not a MAC", client, raw_mac)
            return _script("#!ipxe\necho not a MAC address\nexit 1\n", 404)
        site = ctx.site()
        node = site.node_by_mac(mac)
        if node is not None and not ctx.serves(site, node):
            log.info("boot: node %s (MAC %s): network %s is another boot server's",
                     node.name, mac, site.network_name_of(node))  # fmt: skip
            return _script("#!ipxe\necho not this boot server's network\nexit 1\n", 404)
        record = ctx.store.find(node.name) if node else None
        token = ctx.tokens.token_for(record) if record else None
        if (
            node is not None
            and record is not None
            and record.build_mode
            and site.network.boot_addresses == "fixed"
            and client != str(node.ip)
        ):
            log.warning(
                "boot: node %s (MAC %s): install script refused to client %s: the node boots "
                "with its fixed address %s (network.boot_addresses: fixed)",
                node.name,
                mac,
                client,
                node.ip,
            )
            return _script("#!ipxe\necho install refused: not this node's address\nexit 1\n", 403)
        decision = decide(
            site,
            mac,
            node,
            build_mode=bool(record and record.build_mode),
            token=token,
            base_url=site.network_of(node).provisioner.base_url if node else site.base_url,
        )
        try:
            text = templates.render(decision, ctx.content().search_path("pxe"))
        except BootTemplateError as exc:
            log.error("boot: %s", exc)
            return _script("#!ipxe\necho boot script error, see the provisioner log\nexit 1\n", 500)
        if node is None:
            log.info("boot: unknown MAC %s (client %s): %s", mac, client, decision.message)
            return _script(text)
        log.info("boot: node %s (MAC %s, client %s): %s", node.name, mac, client, decision.message)
        if record is None:
            log.warning("boot: node %s is not enrolled; no event recorded", node.name)
        else:
            events.record(node.name, decision.kind, decision.message)
        return _script(text)

    return bp
