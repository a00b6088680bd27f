"""Post-install hooks: hooks/common/* then hooks/<role folder>/*, in name order.

Planning (which hooks, with which context) is pure; ``HookRunner`` does the I/O:
each hook gets the JSON context on stdin and as PROVISIONER_* variables, runs
with a timeout, and its output goes into the node's event log. The first hook
that fails stops the node's chain and leaves it "configuring failed" with the
hook's name and exit code in the reason; the node's step remembers the hook, so
``hooks rerun`` starts again from there.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import provisioner
from provisioner.errors import StateError
from provisioner.inventory import Node, Site
from provisioner.state.machine import NodeState
from provisioner.state.store import Store

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
MAX_OUTPUT = 16_000
STEP_PREFIX = "hook:"
ACTOR = "hooks"


@dataclass(frozen=True)
class Hook:
    name: str  # "<folder>/<file>", e.g. "controller/50-ha-bundle"
    path: Path


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
        plan += [Hook(f"{folder}/{name}", found[name]) for name in sorted(found)]
    return plan


def was_active_before(store: Store, name: str) -> bool:
    """The node reached ACTIVE in an earlier deployment (its event history says so)."""
    return any(
        e.kind == "transition" and e.to_state == NodeState.ACTIVE.value for e in store.events(name)
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
        "bundle_dir": str(state_dir / "bundles" / node.name),
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

    def run(self, name: str, start_at: str | None = None) -> HookOutcome:
        """Run the node's hooks (from ``start_at`` on); the node must be configuring."""
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
        ran: list[str] = []
        # No reservation here: the pipeline may hold the node's while it waits for the
        # install; the conditional state moves into configuring already let only one
        # runner start (a second one finds the node in another state). The marker file
        # tells `hooks rerun --interrupted` whether this runner is still alive.
        marker = self._marker(name)
        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker.write_text(f"{os.getpid()} {socket.gethostname()}\n")
        try:
            for hook in plan:
                self.store.set_step(name, STEP_PREFIX + hook.name, actor=ACTOR)
                reason = self._run_one(name, hook, context)
                if reason is not None:
                    self.store.transition(
                        name, "fail", reason=reason, actor=ACTOR, step=STEP_PREFIX + hook.name
                    )
                    return HookOutcome(name, tuple(ran), hook.name, reason)
                ran.append(hook.name)
            self.store.transition(name, "activate", actor=ACTOR)
        finally:
            marker.unlink(missing_ok=True)
        return HookOutcome(name, tuple(ran))

    def _marker(self, name: str) -> Path:
        return self.state_dir / "hooks-running" / name

    def runner_alive(self, name: str) -> int | None:
        """The pid of a live runner of this node's hooks on this host, if any."""
        try:
            pid_text, host = self._marker(name).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if host != socket.gethostname():
            return pid  # cannot tell from here: assume it runs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def mark_interrupted(self, name: str) -> None:
        """A node left configuring by a runner that died: fail it where it stopped."""
        record = self.store.get(name)
        if record.state != NodeState.CONFIGURING:
            raise StateError(f"node {name}: not configuring ({record.state.value})")
        pid = self.runner_alive(name)
        if pid is not None:
            raise StateError(f"node {name}: its hooks are still running (pid {pid})")
        where = record.step.removeprefix(STEP_PREFIX) if record.step else "the first hook"
        self.store.transition(
            name, "fail", reason=f"hooks interrupted at {where}", actor=ACTOR, step=record.step
        )
        self._marker(name).unlink(missing_ok=True)

    def rerun(self, name: str) -> HookOutcome:
        """Retry a node whose hooks failed, from the hook that failed."""
        record = self.store.get(name)
        if record.state != NodeState.CONFIGURING_FAILED:
            raise StateError(
                f"node {name}: hooks rerun needs 'configuring failed', not {record.state.value}"
            )
        failed = record.step[len(STEP_PREFIX) :] if record.step else None
        if record.step and not record.step.startswith(STEP_PREFIX):
            failed = None
        self.store.transition(name, "configure", actor=ACTOR, step=record.step)
        self.store.add_event(
            name, f"hooks rerun from {failed or 'the first hook'}", kind="hook", actor=ACTOR
        )
        return self.run(name, start_at=failed)

    def _run_one(self, name: str, hook: Hook, context: dict[str, Any]) -> str | None:
        """Run one hook; its failure reason, or None."""
        log.info("node %s: hook %s starting", name, hook.name)
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
            output, _ = proc.communicate(json.dumps(context), timeout=self.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            timed_out = True
        except BrokenPipeError:  # the hook did not read its stdin
            output, _ = proc.communicate()
            timed_out = False
        code = proc.returncode
        status = f"timed out after {self.timeout_s:g}s" if timed_out else f"exited {code}"
        self.store.add_event(
            name, f"hook {hook.name} {status}\n{_tail(output or '')}".rstrip(), "hook", ACTOR
        )
        if timed_out:
            log.warning("node %s: hook %s %s", name, hook.name, status)
            return f"hook {hook.name} {status}"
        if code != 0:
            log.warning("node %s: hook %s exited %d", name, hook.name, code)
            return f"hook {hook.name} failed with exit code {code}"
        log.info("node %s: hook %s done", name, hook.name)
        return None
