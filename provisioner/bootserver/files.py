"""GET /files/<path>: kernels and initrds; GET /images/<key>/image.tar.zst: OS images.

Flask's send_from_directory refuses paths that leave the folder and, under a
server with ``wsgi.file_wrapper`` (gunicorn), sends with sendfile; Range,
ETag and Last-Modified come with it.

Two Range cases are decided here first, because werkzeug answers both 416
where RFC 9110 (14.2) says otherwise: a range unit other than ``bytes`` must be
ignored (200, the whole file), and a request for several ranges of which one
can be satisfied may not be refused. werkzeug serves single ranges only, so
such a request gets the whole file (200), which RFC 9110 allows: a server may
always ignore Range. Everything else (one range, no satisfiable range,
malformed ranges) stays werkzeug's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory
from werkzeug.security import safe_join

from provisioner.bootserver.context import ServerContext

log = logging.getLogger(__name__)


def _satisfiable(spec: str, size: int) -> bool | None:
    """Whether one byte-range-spec ("a-b", "a-", "-n") overlaps a file of ``size``;
    None if it is not a valid spec."""
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:  # suffix: the last n bytes
        return int(last) > 0 and size > 0
    if last and (not last.isdigit() or int(last) < int(first)):
        return None
    return first.isdigit() and int(first) < size


def range_to_ignore(header: str, size: int) -> str | None:
    """Why a Range header is to be ignored (whole file, 200), or None to honour it."""
    unit, equals, specs = header.partition("=")
    if not equals:
        return None  # malformed: werkzeug's answer
    if unit.strip().lower() != "bytes":
        return f"unknown range unit {unit.strip()!r}"
    parts = specs.split(",")
    if len(parts) < 2:
        return None
    verdicts = [_satisfiable(p, size) for p in parts]
    if None not in verdicts and any(verdicts):
        return "several ranges (served whole)"
    return None


def _serve(ctx: ServerContext, folder: Path | None, kind: str, name: str) -> Response:
    """A file from ``folder`` with sendfile, ETag and a Range answered as RFC 9110 says."""
    client = request.remote_addr or "?"
    node = ctx.site().node_by_ip(client)
    who = f"node {node.name} ({client})" if node else f"client {client}"
    log.info("%s: %s: GET %s", kind, who, name)
    if folder is None:
        abort(404)
    header = request.environ.get("HTTP_RANGE")
    path = safe_join(str(folder), name)
    if header and path is not None and os.path.isfile(path):
        why = range_to_ignore(header, os.path.getsize(path))
        if why is not None:
            log.info("%s: %s: Range %r ignored: %s", kind, who, header[:80], why)
            del request.environ["HTTP_RANGE"]  # read by send_file's make_conditional
    return send_from_directory(folder, name, max_age=0, conditional=True)


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("files", __name__)

    @bp.get("/files/<path:name>")
    def boot_file(name: str) -> Response:
        return _serve(ctx, ctx.boot_files_dir, "files", name)

    @bp.get("/images/<path:name>")
    def image_file(name: str) -> Response:
        """The images `provisioner image build` wrote (liveimg --url of image profiles)."""
        return _serve(ctx, ctx.images_dir, "images", name)

    return bp
