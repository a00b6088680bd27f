"""Post-install hooks: hooks/common/* then hooks/<role folder>/*, in name order.

Planning (which hooks, with which context) is pure; ``HookRunner`` does the I/O:
each hook gets the JSON context on stdin and as PROVISIONER_* variables, runs
with a timeout, and its output goes into the node's event log. Before a hook
starts, its name is recorded as the node's step (``hook:<folder>/<file>``); the
first hook that fails stops the chain and its outcome names it.

The runner moves no node: the pipeline (runner.py) runs it in its own process,
the daemon's, then activates the node or fails it with the hook's reason and
keeps the step, so a resume after a crash or ``hooks rerun`` after a failure
starts again at that hook.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import provisioner
from provisioner.content import bundled_dir
from provisioner.errors import ProvisionerError, StateError
from provisioner.inventory import Node, Site
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import BundleStore
from provisioner.settings import StateDir
from provisioner.state.machine import HOOK_STEP_PREFIX, EventKind, NodeState
from provisioner.state.store import Store

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
#: the file name of each role's HA-bundle hook (hooks/<role>/50-ha-bundle)
BUNDLE_HOOK = "50-ha-bundle"
MAX_OUTPUT = 16_000
STEP_PREFIX = HOOK_STEP_PREFIX
ACTOR = "hooks"


@dataclass(frozen=True)
class Hook:
    name: str  # "<folder>/<file>", e.g. "controller/50-ha-bundle"
    path: Path
    #: the bundled HA-bundle hook: generated in this process from the loaded site (no
    #: subprocess parsing site.yaml again); a site's own copy of it runs as a program
    builtin: bool = False


@dataclass(frozen=True)
class HookOutcome:
    node: str
    ran: tuple[str, ...]
    failed: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def hook_folders(site: Site, node: Node) -> list[str]:
    role = site.roles[node.role]
    return ["common", *(role.hooks if role.hooks is not None else [node.role])]


def plan_hooks(site: Site, node: Node) -> list[Hook]:
    """The node's hooks in run order; a site copy of a hook replaces the bundled one."""
    search = site.content_paths().search_path("hooks")
    plan: list[Hook] = []
    for folder in hook_folders(site, node):
        found: dict[str, Path] = {}
        for base in reversed(search):  # bundled first, site copies override
            directory = base / folder
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                if os.access(entry, os.X_OK):
                    found[entry.name] = entry
                else:
                    found.pop(entry.name, None)  # a non-executable site copy disables it
        bundled = bundled_dir("hooks")
        plan += [
            Hook(
                f"{folder}/{name}",
                found[name],
                builtin=name == BUNDLE_HOOK and found[name].parent.parent == bundled,
            )
            for name in sorted(found)
        ]
    return plan


def was_active_before(store: Store, name: str) -> bool:
    """The node reached ACTIVE in an earlier deployment (its event history says so)."""
    return any(
        e.kind is EventKind.TRANSITION and e.to_state == NodeState.ACTIVE.value
        for e in store.events(name)
    )


def hook_context(
    site: Site, store: Store, node: Node, state_dir: Path, site_path: Path
) -> dict[str, Any]:
    kind = site.role_kind(node.role)
    others = sorted(
        (n for n in site.nodes_of_kind(kind) if n.name != node.name), key=lambda n: n.name
    )
    records = {r.name: r for r in store.all()}
    vips = [
        {"name": v.name, "address": str(v.address), "role": role_name}
        for role_name, role in sorted(site.roles.items())
        for v in role.ha.vips
    ]
    first = not was_active_before(store, node.name)
    return {
        "node": node.name,
        "fqdn": site.fqdn(node),
        "role": node.role,
        "role_kind": kind,
        "addresses": {"ip": str(node.ip), "macs": list(node.macs), "fqdn": site.fqdn(node)},
        "members": [
            {
                "name": n.name,
                "ip": str(n.ip),
                "fqdn": site.fqdn(n),
                "state": records[n.name].state.value if n.name in records else None,
            }
            for n in others
        ],
        "vips": vips,
        "first_deployment": first,
        "reprovision": not first,
        "site": str(site_path),
        "state_dir": str(state_dir),
        "bundle_dir": str(StateDir(state_dir).bundle(node.name)),
    }


def hook_environment(context: dict[str, Any]) -> dict[str, str]:
    """The context as PROVISIONER_* variables (lists space-separated)."""
    package_root = str(Path(provisioner.__file__).resolve().parent.parent)
    members = context["members"]
    return {
        "PROVISIONER_NODE": context["node"],
        "PROVISIONER_FQDN": context["fqdn"],
        "PROVISIONER_ROLE": context["role"],
        "PROVISIONER_ROLE_KIND": context["role_kind"],
        "PROVISIONER_IP": context["addresses"]["ip"],
        "PROVISIONER_MACS": " ".join(context["addresses"]["macs"]),
        "PROVISIONER_MEMBERS": " ".join(m["name"] for m in members),
        "PROVISIONER_MEMBER_IPS": " ".join(m["ip"] for m in members),
        "PROVISIONER_VIPS": " ".join(v["address"] for v in context["vips"]),
        "PROVISIONER_FIRST_DEPLOYMENT": "1" if context["first_deployment"] else "0",
        "PROVISIONER_REPROVISION": "1" if context["reprovision"] else "0",
        "PROVISIONER_SITE": context["site"],
        "PROVISIONER_STATE_DIR": context["state_dir"],
        "PROVISIONER_BUNDLE_DIR": context["bundle_dir"],
        "PROVISIONER_CONTEXT": json.dumps(context, sort_keys=True),
        "PROVISIONER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
        ),
    }


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else "[...]\n" + text[-MAX_OUTPUT:]


class HookRunner:
    def __init__(
        self,
        site: Callable[[], Site],
        store: Store,
        state_dir: Path,
        site_path: Path,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.site, self.store = site, store
        self.state_dir, self.site_path = state_dir, site_path
        self.timeout_s = timeout_s

    def run(
        self,
        name: str,
        start_at: str | None = None,
        budget_s: float | None = None,
        before_hook: Callable[[Hook], None] | None = None,
    ) -> HookOutcome:
        """Run the node's hooks (from ``start_at`` on); the node must be configuring.

        Each hook's name is recorded as the node's step before it starts, and
        ``before_hook`` is called (the pipeline refreshes its reservation there).
        ``budget_s`` bounds the whole chain: no hook runs past it.
        """
        site = self.site()
        node = site.node(name)
        record = self.store.get(name)
        if record.state != NodeState.CONFIGURING:
            raise StateError(f"node {name}: hooks run while configuring, not {record.state.value}")
        plan = plan_hooks(site, node)
        names = [h.name for h in plan]
        if start_at in names:
            plan = plan[names.index(start_at) :]
        elif start_at is not None:
            log.warning("node %s: hook %s is gone; running every hook", name, start_at)
        context = hook_context(site, self.store, node, self.state_dir, self.site_path)
        deadline = None if budget_s is None else time.monotonic() + budget_s
        ran: list[str] = []
        for hook in plan:
            self.store.set_step(name, STEP_PREFIX + hook.name, actor=ACTOR)
            if before_hook is not None:
                before_hook(hook)
            timeout = self.timeout_s
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    late = f"hooks did not finish within {budget_s:g}s (next: {hook.name})"
                    return HookOutcome(name, tuple(ran), hook.name, late)
            failure = self._run_one(name, hook, context, timeout)
            if failure is not None:
                return HookOutcome(name, tuple(ran), hook.name, failure)
            ran.append(hook.name)
        return HookOutcome(name, tuple(ran))

    def _bundle_in_process(self, name: str, hook: Hook, context: dict[str, Any]) -> str | None:
        """The HA bundle from the site already loaded, as the bundled hook would make it."""
        try:
            files = generate(self.site(), name, DeployFacts.from_context(context))
            path = BundleStore(self.state_dir).write(name, files)
        except ProvisionerError as exc:
            self.store.add_event(
                name, f"hook {hook.name} failed (in-process)\n{exc}", EventKind.HOOK, ACTOR,
                event="failed",
            )  # fmt: skip
            log.warning("node %s: hook %s failed: %s", name, hook.name, exc)
            return f"hook {hook.name} failed: {exc}"
        self.store.add_event(
            name,
            f"hook {hook.name} done in-process\nnode {name}: {len(files)} files written to {path}",
            EventKind.HOOK,
            ACTOR,
            event="ok",
        )
        log.info("node %s: hook %s done", name, hook.name)
        return None

    def _run_one(
        self, name: str, hook: Hook, context: dict[str, Any], timeout: float
    ) -> str | None:
        """Run one hook for at most ``timeout`` seconds; its failure reason, or None."""
        log.info("node %s: hook %s starting", name, hook.name)
        if hook.builtin:
            return self._bundle_in_process(name, hook, context)
        env = {**os.environ, **hook_environment(context)}
        proc = subprocess.Popen(
            [str(hook.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(hook.path.parent),
            start_new_session=True,  # its own process group, killed whole on timeout
            text=True,
            errors="replace",
        )
        try:
            output, _ = proc.communicate(json.dumps(context), timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            timed_out = True
        except BrokenPipeError:  # the hook did not read its stdin
            output, _ = proc.communicate()
            timed_out = False
        code = proc.returncode
        status = f"timed out after {round(timeout, 1):g}s" if timed_out else f"exited {code}"
        outcome = "timed out" if timed_out else "ok" if code == 0 else "failed"
        self.store.add_event(
            name,
            f"hook {hook.name} {status}\n{_tail(output or '')}".rstrip(),
            EventKind.HOOK,
            ACTOR,
            event=outcome,
        )
        if timed_out:
            log.warning("node %s: hook %s %s", name, hook.name, status)
            return f"hook {hook.name} {status}"
        if code != 0:
            log.warning("node %s: hook %s exited %d", name, hook.name, code)
            return f"hook {hook.name} failed with exit code {code}"
        log.info("node %s: hook %s done", name, hook.name)
        return None
