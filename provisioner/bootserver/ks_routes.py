"""GET /ks/<node>?token=...: a node's kickstart, for the installer holding its token.

Anything but the node's live token (missing, wrong, another node's, spent or
expired) gets a bare 403: the body says nothing and the log names the node but
never the token. A served kickstart is recorded on the node as a
KICKSTART_SERVED event; the route moves no node (the pipeline, waiting for that
event, moves it to installing).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request

from provisioner.bootserver.context import ServerContext
from provisioner.errors import ProvisionerError, UnknownNode
from provisioner.install.images import ImageStore
from provisioner.install.kickstart import render_kickstart
from provisioner.state.machine import EventKind

log = logging.getLogger(__name__)

ACTOR = "bootserver:kickstart"
_SAFE_NAME = re.compile(r"^[a-z0-9-]{1,63}$")


def _forbidden() -> Response:
    return Response("", status=403, mimetype="text/plain")


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("kickstart", __name__)

    @bp.get("/ks/<node>")
    def kickstart(node: str) -> Response:
        shown = node if _SAFE_NAME.match(node) else repr(node[:64])
        token = request.args.get("token", "")
        site = ctx.site()
        try:
            inventory_node = site.node(node)
        except UnknownNode:
            log.warning("node %s: kickstart refused: not in the inventory", shown)
            return _forbidden()
        record = ctx.store.find(node)
        if record is None:
            log.warning("node %s: kickstart refused: not enrolled", node)
            return _forbidden()
        if not token or not ctx.tokens.verify(record, token):
            why = "no token" if not token else "wrong, spent or expired token"
            log.warning("node %s: kickstart refused from %s: %s", node, request.remote_addr, why)
            return _forbidden()
        try:
            images = ImageStore(ctx.images_dir) if ctx.images_dir is not None else None
            text = render_kickstart(
                site,
                inventory_node,
                token=token,
                base_url=site.network_of(inventory_node).provisioner.base_url,
                images=images,
            )
        except ProvisionerError as exc:
            log.error("node %s: kickstart cannot be rendered: %s", node, exc)
            return Response("kickstart cannot be rendered; see the provisioner log\n", status=500)
        if request.method == "HEAD":  # a probe, not the installer: change nothing
            return Response(text, mimetype="text/plain")
        ctx.store.add_event(node, "kickstart served", EventKind.KICKSTART_SERVED, ACTOR)
        log.info("node %s: kickstart served to %s", node, request.remote_addr)
        return Response(text, mimetype="text/plain")

    return bp
