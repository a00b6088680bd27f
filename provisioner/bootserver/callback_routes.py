"""HTTP routes of installed nodes: the install callback and the bundle pull endpoint.

POST /api/v1/nodes/<node>/callback   {"status": "started"|"installed"|"failed", "message": ...}
GET  /api/v1/nodes/<node>/bundle     the node's own HA bundle (tar.gz)

Both take the node's deploy token as ``Authorization: Bearer <token>`` or ``?token=``.
A wrong, expired or replayed token gets 403 and changes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from provisioner.bootserver.context import ServerContext
from provisioner.errors import BundleError, CallbackInvalid, CallbackRejected, StateError
from provisioner.pipeline.callbacks import CallbackDeps, handle_callback, state_dir_of
from provisioner.pipeline.hooks import HookRunner
from provisioner.roles.bundles import BundleStore

log = logging.getLogger(__name__)


def presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.args.get("token", "")


def default_deps(ctx: ServerContext, state_dir: Path) -> CallbackDeps:
    runner = HookRunner(ctx.site, ctx.store, state_dir, ctx.sites.path)
    return CallbackDeps(
        store=ctx.store,
        tokens=ctx.tokens,
        site=ctx.site,
        bundles=BundleStore(state_dir),
        run_hooks=runner.run,
    )


def blueprint(
    ctx: ServerContext, state_dir: Path | None = None, deps: CallbackDeps | None = None
) -> Blueprint:
    """The routes; ``state_dir`` defaults to the SQLite store's folder."""
    if deps is None:
        state_dir = state_dir or state_dir_of(ctx.store)
        if state_dir is None:
            raise ValueError("callback routes need the state dir (where bundles live)")
        deps = default_deps(ctx, state_dir)
    bp = Blueprint("callbacks", __name__)
    callback_deps = deps

    @bp.post("/api/v1/nodes/<node>/callback")
    def callback(node: str) -> tuple[Response, int]:
        remote = request.remote_addr or "?"
        body = request.get_json(force=True, silent=True)  # installers may omit the type
        if not isinstance(body, dict):
            body = {}
        try:
            result = handle_callback(
                callback_deps,
                node,
                presented_token(),
                body.get("status"),
                body.get("message", ""),
                remote,
            )
        except CallbackRejected:
            return jsonify(error="forbidden"), 403
        except CallbackInvalid as exc:
            return jsonify(error=str(exc)), 400
        except StateError as exc:
            log.warning("node %s: callback from %s conflicts: %s", node, remote, exc)
            return jsonify(error=str(exc)), 409
        return jsonify(node=result.node, status=result.status, state=result.state), 200

    @bp.get("/api/v1/nodes/<node>/bundle")
    def bundle(node: str) -> tuple[Response, int]:
        remote = request.remote_addr or "?"
        bundles = callback_deps.bundles
        record = callback_deps.store.find(node)
        try:
            # a node deploying again (build mode on) gets its new bundle after that install
            allowed = bundles.may_pull(node, presented_token()) and not (
                record is None or record.build_mode
            )
        except BundleError:
            allowed = False
        if not allowed:
            log.warning("node %s: bundle request from %s rejected: bad token", node, remote)
            return jsonify(error="forbidden"), 403
        if not bundles.exists(node):
            return jsonify(error=f"node {node}: bundle not generated yet"), 404
        data = bundles.tarball(node)
        log.info("node %s: bundle served to %s (%d bytes)", node, remote, len(data))
        response = Response(data, mimetype="application/gzip")
        response.headers["Content-Disposition"] = f'attachment; filename="{node}-bundle.tar.gz"'
        response.headers["Cache-Control"] = "no-store"
        return response, 200

    return bp
