"""GET /boot/<mac>.ipxe: the iPXE script a MAC boots next.

A node in build mode gets its installer (kernel, initrd, kickstart URL with the
deploy's token); any other known node boots its local disk; an unknown MAC gets
the discovery script (open sites) or a clean exit, never another node's
install. Each request is logged with the node's name and recorded on the node
as a BOOT_SCRIPT event named by the script's kind (written in batches by a
background thread, see bootevents.py), which the pipeline waits for. The node's
row comes from the worker's in-memory copy (nodeindex.py), not the database. Nothing else changes:
the route moves no node.

The install script carries the node's live deploy token, and a MAC is no
secret: on a site whose nodes boot with their fixed address
(``network.boot_addresses: fixed``, the default) it is only handed to a client
at the node's own address. Any other client is refused (403, the reason
logged, no event recorded, nothing rendered with the token).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request

from provisioner.bootserver.bootevents import BootEventWriter
from provisioner.bootserver.bootscript import BootTemplates, decide
from provisioner.bootserver.context import ServerContext
from provisioner.bootserver.nodeindex import NodeIndex
from provisioner.errors import BootTemplateError
from provisioner.inventory.macs import normalise_mac

log = logging.getLogger(__name__)

IPXE_MIMETYPE = "text/plain"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _script(text: str, status: int = 200) -> Response:
    return Response(
        text, status=status, mimetype=IPXE_MIMETYPE, headers={"Cache-Control": "no-store"}
    )


def boot_scripts(ctx: ServerContext) -> Callable[[str, str], tuple[str, int]]:
    """The route's logic, apart from any web framework."""
    templates = BootTemplates()
    events = BootEventWriter(ctx.store)
    nodes = NodeIndex(ctx.store)

    def reply(raw_mac: str, client: str) -> tuple[str, int]:
        """The script for ``raw_mac`` asked by ``client`` and its HTTP status."""
        mac = normalise_mac(raw_mac)
        if mac is None:
            log.warning("boot: client %s asked for a script for %r: not a MAC", client, raw_mac)
            return ("#!ipxe\necho not a MAC address\nexit 1\n", 404)
        site = ctx.site()
        node = site.node_by_mac(mac)
        if node is not None and not ctx.serves(site, node):
            log.info("boot: node %s (MAC %s): network %s is another boot server's",
                     node.name, mac, site.network_name_of(node))  # fmt: skip
            return ("#!ipxe\necho not this boot server's network\nexit 1\n", 404)
        record = nodes.find(node.name) if node else None
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
            return ("#!ipxe\necho install refused: not this node's address\nexit 1\n", 403)
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
            return ("#!ipxe\necho boot script error, see the provisioner log\nexit 1\n", 500)
        if node is None:
            log.info("boot: unknown MAC %s (client %s): %s", mac, client, decision.message)
            return text, 200
        log.info("boot: node %s (MAC %s, client %s): %s", node.name, mac, client, decision.message)
        if record is None:
            log.warning("boot: node %s is not enrolled; no event recorded", node.name)
        else:
            events.record(node.name, decision.kind, decision.message)
        return text, 200

    return reply


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("boot", __name__)
    reply = boot_scripts(ctx)
    # create_app puts wsgi_fast_path in front of Flask with the same reply
    bp.record_once(lambda state: state.app.extensions.__setitem__(FAST_PATH_KEY, reply))

    @bp.get("/boot/<raw_mac>.ipxe")
    def boot_script(raw_mac: str) -> Response:
        text, status = reply(raw_mac, request.remote_addr or "?")
        return _script(text, status)

    return bp


FAST_PATH_KEY = "provisioner.boot_script"
_PREFIX, _SUFFIX = "/boot/", ".ipxe"
_HEADERS = [("Content-Type", f"{IPXE_MIMETYPE}; charset=utf-8"), ("Cache-Control", "no-store")]


def wsgi_fast_path(app: WSGIApp, reply: Callable[[str, str], tuple[str, int]]) -> WSGIApp:
    """GET /boot/<mac>.ipxe answered before Flask's request machinery (a third of the
    route's time at 50 clients); the same ``reply`` as the Flask route, every other
    request goes to Flask unchanged."""

    def fast(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and path.startswith(_PREFIX)
            and path.endswith(_SUFFIX)
            and "/" not in path[len(_PREFIX) :]
        ):
            text, status = reply(
                path[len(_PREFIX) : -len(_SUFFIX)], environ.get("REMOTE_ADDR") or "?"
            )
            body = text.encode()
            start_response(
                f"{status} {HTTPStatus(status).phrase}",
                [*_HEADERS, ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return fast
