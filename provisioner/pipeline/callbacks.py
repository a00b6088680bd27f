"""What an installing node's callback does: verify its token, then move the node on.

``handle_callback`` is the whole logic, over injected dependencies, so the HTTP
route (bootserver/callback_routes.py) is a thin shell and tests drive either.

A wrong, expired or replayed token is rejected before anything changes, with a
warning naming the node and the remote address (never the token). "installed"
spends the token (build mode off), points the BMC's boot device at the disk,
moves the node to configuring and starts its hooks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.errors import (
    CallbackInvalid,
    CallbackRejected,
    ProvisionerError,
    StateError,
    UnknownNode,
)
from provisioner.inventory import Node, Site
from provisioner.roles.bundles import BundleStore
from provisioner.state.machine import NodeState
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens

log = logging.getLogger(__name__)

STATUSES = ("started", "installed", "failed")
MAX_MESSAGE = 500
ACTOR = "callback"


@dataclass(frozen=True)
class CallbackResult:
    node: str
    status: str
    state: str


def default_set_boot_disk(site: Site, node: Node) -> None:
    """Persistent boot from disk through the node's BMC, in the node's firmware mode."""
    from provisioner.power import driver_for

    driver_for(site, node).set_boot_device(
        "disk", persistent=True, uefi=site.boot_mode_of(node) == "uefi"
    )


def run_in_thread(work: Callable[[], None], node: str) -> None:
    threading.Thread(target=work, name=f"hooks-{node}", daemon=True).start()


@dataclass
class CallbackDeps:
    store: Store
    tokens: DeployTokens
    site: Callable[[], Site]
    bundles: BundleStore
    #: runs the node's hooks (and moves it to active or configuring failed)
    run_hooks: Callable[[str], object]
    set_boot_disk: Callable[[Site, Node], None] = default_set_boot_disk
    #: how run_hooks is started: a background thread, so the HTTP answer is quick
    spawn: Callable[[Callable[[], None], str], None] = field(default=run_in_thread)


def clean_message(message: object) -> str:
    """A node's message as safe one-line text of bounded length."""
    text = message if isinstance(message, str) else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:MAX_MESSAGE]


def authenticate(deps: CallbackDeps, node: str, token: str, remote: str) -> Node:
    """The inventory node if ``token`` is its live deploy token; else CallbackRejected."""
    site = deps.site()
    try:
        inv_node = site.node(node)
    except UnknownNode:
        log.warning("node %s: callback from %s rejected: not in the inventory", node, remote)
        raise CallbackRejected(f"node {node}: callback rejected") from None
    record = deps.store.find(node)
    if record is None or not token or not deps.tokens.verify(record, token):
        why = "not enrolled" if record is None else "wrong, expired or spent token"
        log.warning("node %s: callback from %s rejected: %s", node, remote, why)
        raise CallbackRejected(f"node {node}: callback rejected")
    return inv_node


def handle_callback(
    deps: CallbackDeps, node: str, token: str, status: object, message: object, remote: str
) -> CallbackResult:
    inv_node = authenticate(deps, node, token, remote)
    if status not in STATUSES:
        raise CallbackInvalid(
            f"node {node}: callback field 'status' must be one of {', '.join(STATUSES)}"
        )
    text = clean_message(message)
    actor = f"{ACTOR}:{remote}"
    store = deps.store
    if status == "started":
        store.add_event(node, f"installer started{': ' + text if text else ''}", "callback", actor)
        log.info("node %s: installer reports it started", node)
    elif status == "failed":
        _install_failed(deps, node, text or "no message", actor)
    else:
        _installed(deps, inv_node, token, text, actor)
    return CallbackResult(node, str(status), store.get(node).state.value)


def _install_failed(deps: CallbackDeps, node: str, text: str, actor: str) -> None:
    store = deps.store
    state = store.get(node).state
    store.add_event(node, f"installer reports failure: {text}", "callback", actor)
    # The token dies with the failed install: no replay, no reinstall loop on the next boot.
    store.end_build_mode(node, actor, why="install failed")
    if state in (NodeState.BOOTING, NodeState.INSTALLING):
        store.transition(node, "fail", reason=f"installer failed: {text}", actor=actor)
    else:
        log.warning("node %s: installer failure reported while %s", node, state.value)


def _installed(deps: CallbackDeps, node: Node, token: str, text: str, actor: str) -> None:
    store, name = deps.store, node.name
    state = store.get(name).state
    if state == NodeState.BOOTING:  # the installer was quicker than our bookkeeping
        store.transition(name, "install", actor=actor)
    store.transition(name, "installed", actor=actor)
    if text:
        store.add_event(name, f"installer: {text}", "callback", actor)
    deps.bundles.allow_pull(name, token)  # the node may still fetch its own bundle
    store.end_build_mode(name, actor, why="install complete")
    try:
        deps.set_boot_disk(deps.site(), node)
    except Exception as exc:  # any BMC or driver error: the node stops here, visibly
        detail = str(exc) if isinstance(exc, ProvisionerError) else type(exc).__name__
        log.warning("node %s: setting boot device to disk failed: %s", name, detail)
        store.transition(
            name, "fail", reason=f"BMC: setting boot device to disk failed: {detail}", actor=actor
        )
        return
    store.add_event(name, "BMC boot device: disk (persistent)", "note", actor)
    store.transition(name, "configure", actor=actor, step="hooks")
    deps.spawn(lambda: _run_hooks_logged(deps, name), name)


def _run_hooks_logged(deps: CallbackDeps, name: str) -> None:
    try:
        deps.run_hooks(name)
    except Exception as exc:  # a crash in the runner must not leave the node configuring
        log.exception("node %s: hook runner crashed", name)
        with contextlib.suppress(StateError):
            deps.store.transition(
                name, "fail", reason=f"hook runner crashed: {type(exc).__name__}", actor=ACTOR
            )


def state_dir_of(store: Store) -> Path | None:
    """The state dir of a SQLite store (where bundles live by default)."""
    prefix = "sqlite:///"
    return Path(store.url[len(prefix) :]).parent if store.url.startswith(prefix) else None
