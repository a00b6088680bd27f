"""HTTP routes of installing and installed nodes: the install callback and the bundle pull.

POST /api/v1/nodes/<node>/callback   {"status": "started"|"installed"|"failed"|"booted"|
                                      "applied"|"apply-failed", "message": ...,
                                      "kernel": ... (booted), "services": ... (apply reports,
                                      see apply_report.py)}
GET  /api/v1/nodes/<node>/bundle     the node's own HA bundle (tar.gz)

Both take the node's deploy token as ``Authorization: Bearer <token>`` or ``?token=``.
A wrong, expired or replayed token gets 403 and changes nothing, with a warning
naming the node and the remote address (never the token).

The callback only reports: it records a CALLBACK event named by the status,
with the installer's message, and answers 202 Accepted with the node's current
state. "installed" and "failed" spend the token (build mode off) in the same
transaction as the event, so a second identical callback finds the token spent
(403). The pipeline, waiting for that event in the daemon, moves the node,
points its BMC at the disk and runs its hooks; a restarted web worker loses
nothing.

"booted" comes later, from the installed system's first-boot unit (image installs):
the deploy token is spent by then, so it is accepted the way the bundle pull is
(the spent token's hash, kept for a day, until the node deploys again). It only
records a CALLBACK event "booted" with the running kernel, which the pipeline
waits for before it runs the hooks (pipeline/runner.py, step WAIT_BOOTED).

"applied" and "apply-failed" come from the installed system's apply unit once it
pulled the bundle the hooks generated and brought its role's services up (or
failed to): authenticated the same way, accepted only while the node is
configuring (409 otherwise), and schema-checked (apply_report.py, 400 on any
mismatch). The pipeline makes the node active on "applied" and fails it with the
service and log excerpt on "apply-failed" (step WAIT_APPLIED).

The bundle pull answers 404 until the hooks generated this deployment's bundle
(one older than the node's install callback is the previous deployment's).
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from provisioner.bootserver import apply_report
from provisioner.bootserver.context import ServerContext
from provisioner.errors import (
    BundleError,
    CallbackConflict,
    CallbackInvalid,
    CallbackRejected,
    DeploySpent,
    UnknownNode,
)
from provisioner.roles.bundles import BundleStore
from provisioner.state.machine import CallbackStatus, EventKind, NodeState
from provisioner.state.store import NodeRecord

log = logging.getLogger(__name__)

MAX_MESSAGE = 500
ACTOR = "callback"
#: statuses that end the install, and with it the deploy's token
FINAL = {CallbackStatus.INSTALLED: "install complete", CallbackStatus.FAILED: "install failed"}


def presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.args.get("token", "")


def clean_message(message: object) -> str:
    """A node's message as safe one-line text of bounded length."""
    text = message if isinstance(message, str) else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:MAX_MESSAGE]


def authenticate(ctx: ServerContext, node: str, token: str, remote: str) -> NodeRecord:
    """The node's record if ``token`` is its live deploy token; else CallbackRejected."""
    try:
        ctx.site().node(node)
    except UnknownNode:
        log.warning("node %s: callback from %s rejected: not in the inventory", node, remote)
        raise CallbackRejected(f"node {node}: callback rejected") from None
    record = ctx.store.find(node)
    if record is None or not token or not ctx.tokens.verify(record, token):
        why = "not enrolled" if record is None else "wrong, expired or spent token"
        log.warning("node %s: callback from %s rejected: %s", node, remote, why)
        raise CallbackRejected(f"node {node}: callback rejected")
    return record


def parse_status(node: str, status: object) -> CallbackStatus:
    if not isinstance(status, str) or status not in set(CallbackStatus):
        raise CallbackInvalid(
            f"node {node}: callback field 'status' must be one of "
            f"{', '.join(s.value for s in CallbackStatus)}"
        )
    return CallbackStatus(status)


def record_callback(
    ctx: ServerContext,
    bundles: BundleStore,
    node: str,
    token: str,
    body: dict[str, object],
    remote: str,
) -> tuple[CallbackStatus, NodeRecord]:
    """Authenticate, validate and record one callback; its status and the node's record."""
    if body.get("status") == CallbackStatus.BOOTED:
        return record_booted(ctx, bundles, node, token, body, remote)
    if body.get("status") in (CallbackStatus.APPLIED, CallbackStatus.APPLY_FAILED):
        return record_applied(ctx, bundles, node, token, body, remote)
    record = authenticate(ctx, node, token, remote)
    status = parse_status(node, body.get("status"))
    text = clean_message(body.get("message", ""))
    actor = f"{ACTOR}:{remote}"
    if status in FINAL:
        assert record.deploy_id is not None  # verify() passed: the deploy is live
        if status is CallbackStatus.INSTALLED:
            bundles.allow_pull(node, token)  # the node may still fetch its own bundle
        try:
            ctx.store.record_and_end_build(
                node,
                record.deploy_id,
                EventKind.CALLBACK,
                text,
                actor,
                event=status.value,
                why=FINAL[status],
            )
        except DeploySpent:  # a replay that raced the first callback past verify()
            log.warning("node %s: callback from %s rejected: spent token", node, remote)
            raise CallbackRejected(f"node {node}: callback rejected") from None
    else:
        ctx.store.add_event(node, text, EventKind.CALLBACK, actor, event=status.value)
    log.info("node %s: installer reports %s%s", node, status.value, f": {text}" if text else "")
    return status, ctx.store.get(node)


def installed_system(
    ctx: ServerContext, bundles: BundleStore, node: str, token: str, remote: str, what: str
) -> NodeRecord:
    """The node's record if ``token`` is the spent deploy token of its latest install
    (what its installed system holds); else CallbackRejected."""
    record = ctx.store.find(node)
    try:
        allowed = bool(token) and bundles.may_pull(node, token)
    except BundleError:
        allowed = False
    if record is None or record.build_mode or not allowed:
        log.warning("node %s: %s callback from %s rejected: bad token", node, what, remote)
        raise CallbackRejected(f"node {node}: callback rejected")
    return record


def record_applied(
    ctx: ServerContext,
    bundles: BundleStore,
    node: str,
    token: str,
    body: dict[str, object],
    remote: str,
) -> tuple[CallbackStatus, NodeRecord]:
    """The installed system's report of applying its bundle, checked field by field."""
    record = installed_system(ctx, bundles, node, token, remote, "apply")
    report = apply_report.parse(node, body)
    if record.state is not NodeState.CONFIGURING:
        log.warning(
            "node %s: apply report from %s refused: node is %s", node, remote, record.state.value
        )
        raise CallbackConflict(f"node {node}: apply report while {record.state.value}")
    status = CallbackStatus(report.status)
    text = report.text()
    ctx.store.add_event(node, text, EventKind.CALLBACK, f"{ACTOR}:{remote}", event=status.value)
    log.info("node %s: installed system reports %s: %s", node, status.value, text)
    return status, ctx.store.get(node)


def record_booted(
    ctx: ServerContext,
    bundles: BundleStore,
    node: str,
    token: str,
    body: dict[str, object],
    remote: str,
) -> tuple[CallbackStatus, NodeRecord]:
    """The installed system's first boot: authenticated by the spent token's hash."""
    installed_system(ctx, bundles, node, token, remote, "booted")
    kernel = clean_message(body.get("kernel", ""))[:100]
    text = clean_message(body.get("message", "")) or f"booted from disk: kernel {kernel or '?'}"
    ctx.store.add_event(
        node, text, EventKind.CALLBACK, f"{ACTOR}:{remote}", event=CallbackStatus.BOOTED.value
    )
    log.info("node %s: installed system reports booted (kernel %s)", node, kernel or "?")
    return CallbackStatus.BOOTED, ctx.store.get(node)


def blueprint(
    ctx: ServerContext, state_dir: Path | None = None, bundles: BundleStore | None = None
) -> Blueprint:
    """The routes; bundles live in ``state_dir``, by default the SQLite store's folder."""
    if bundles is None:
        state_dir = state_dir or ctx.state_dir or ctx.store.state_dir
        if state_dir is None:
            raise ValueError("callback routes need the state dir (where bundles live)")
        bundles = BundleStore(state_dir)
    bp = Blueprint("callbacks", __name__)
    node_bundles = bundles

    @bp.post("/api/v1/nodes/<node>/callback")
    def callback(node: str) -> tuple[Response, int]:
        remote = request.remote_addr or "?"
        body = request.get_json(force=True, silent=True)  # installers may omit the type
        try:
            status, record = record_callback(
                ctx,
                node_bundles,
                node,
                presented_token(),
                body if isinstance(body, dict) else {},
                remote,
            )
        except CallbackRejected:
            return jsonify(error="forbidden"), 403
        except CallbackInvalid as exc:
            return jsonify(error=str(exc)), 400
        except CallbackConflict as exc:
            return jsonify(error=str(exc)), 409
        return jsonify(node=node, status=status.value, state=record.state.value), 202

    @bp.get("/api/v1/nodes/<node>/bundle")
    def bundle(node: str) -> tuple[Response, int]:
        remote = request.remote_addr or "?"
        record = ctx.store.find(node)
        try:
            # a node deploying again (build mode on) gets its new bundle after that install
            allowed = node_bundles.may_pull(node, presented_token()) and not (
                record is None or record.build_mode
            )
        except BundleError:
            allowed = False
        if not allowed:
            log.warning("node %s: bundle request from %s rejected: bad token", node, remote)
            return jsonify(error="forbidden"), 403
        if not node_bundles.current(node):
            return jsonify(error=f"node {node}: bundle not generated yet"), 404
        data = node_bundles.tarball(node)
        log.info("node %s: bundle served to %s (%d bytes)", node, remote, len(data))
        response = Response(data, mimetype="application/gzip")
        response.headers["Content-Disposition"] = f'attachment; filename="{node}-bundle.tar.gz"'
        response.headers["Cache-Control"] = "no-store"
        return response, 200

    return bp
