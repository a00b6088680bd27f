"""GET /files/<path>: kernels and initrds; GET /images/<key>/image.tar.zst: OS images.

Flask's send_from_directory refuses paths that leave the folder and, under a
server with ``wsgi.file_wrapper`` (gunicorn), sends with sendfile; Range,
ETag and Last-Modified come with it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request, send_from_directory

from provisioner.bootserver.context import ServerContext

log = logging.getLogger(__name__)


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("files", __name__)

    @bp.get("/files/<path:name>")
    def boot_file(name: str) -> Response:
        client = request.remote_addr or "?"
        node = ctx.site().node_by_ip(client)
        who = f"node {node.name} ({client})" if node else f"client {client}"
        log.info("files: %s: GET %s", who, name)
        return send_from_directory(ctx.boot_files_dir, name, max_age=0, conditional=True)

    @bp.get("/images/<path:name>")
    def image_file(name: str) -> Response:
        """The images `provisioner image build` wrote (liveimg --url of image profiles)."""
        client = request.remote_addr or "?"
        node = ctx.site().node_by_ip(client)
        who = f"node {node.name} ({client})" if node else f"client {client}"
        log.info("images: %s: GET %s", who, name)
        if ctx.images_dir is None:
            abort(404)
        return send_from_directory(ctx.images_dir, name, max_age=0, conditional=True)

    return bp
