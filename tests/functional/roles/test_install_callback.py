"""The install callback and bundle pull endpoint, served by a real WSGI server on loopback
and called with curl, the way a node's %post does.

The route only records the callback (and spends the token); the pipeline, here
resumed in the test process as the daemon would, moves the node on."""

from __future__ import annotations

import json
import logging
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from provisioner.bootserver.callback_routes import blueprint
from provisioner.bootserver.context import ServerContext
from provisioner.inventory import Node, Site
from provisioner.inventory.source import SiteSource
from provisioner.pipeline.backends import BootDevice
from provisioner.pipeline.hooks import HookRunner
from provisioner.pipeline.runner import Pipeline, Timeouts
from provisioner.roles.bundles import BundleStore
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens
from tests.functional.roles.conftest import run, walk

pytestmark = pytest.mark.functional
NODE = "ctl1"


class BootDiskRecorder:
    """Stands in for the BMC (physical hardware) in the pipeline's backends; the power
    drivers have their own tests. Only the boot device may be set after an install."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        self.error = error

    def set_boot_device(self, site: Site, node: Node, device: BootDevice, persistent: bool) -> None:
        self.calls.append((node.name, device, persistent))
        if self.error is not None:
            raise self.error

    def _unexpected(self, site: Site, node: Node) -> None:
        raise AssertionError(f"node {node.name}: no other BMC, DNS or DHCP call after the install")

    publish_dns = unpublish_dns = add_dhcp_host = remove_dhcp_host = _unexpected
    power_cycle = power_off = _unexpected


@dataclass
class Lab:
    url: str
    store: Store
    tokens: DeployTokens
    state_dir: Path
    boot: BootDiskRecorder
    pipeline: Pipeline

    def deploy(self, name: str = NODE) -> str:
        """Walk the node into installing with build mode on; returns its token."""
        walk(self.store, name, NodeState.INSTALLING)
        self.store.start_build_mode(name, actor="test")
        token = self.tokens.token_for(self.store.get(name))
        assert token
        return token

    def post(self, name: str, body: object, token: str | None, query: bool = False) -> int:
        url = f"{self.url}/api/v1/nodes/{name}/callback"
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]
        cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        if token is not None and query:
            url += f"?token={token}"
        elif token is not None:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        return int(run([*cmd, url]).stdout)

    def fetch_bundle(self, name: str, token: str, dest: Path) -> int:
        url = f"{self.url}/api/v1/nodes/{name}/bundle?token={token}"
        cmd = ["curl", "-sS", "-o", str(dest), "-w", "%{http_code}", url]
        return int(run(cmd).stdout)

    def drive(self, name: str = NODE) -> NodeState:
        """What the daemon does: continue the node from where its events say it is."""
        return self.pipeline.resume(name).state

    def snapshot(self, name: str = NODE) -> tuple[object, ...]:
        rec = self.store.get(name)
        return (rec, len(self.store.events(name)))


def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def make_lab(
    site_dir: Path, boot: BootDiskRecorder, max_age: timedelta = timedelta(hours=1)
) -> Iterator[Lab]:
    state_dir = site_dir / "state"
    store = Store.open(state_dir)
    tokens = DeployTokens.from_state_dir(state_dir, max_age=max_age)
    sites = SiteSource(site_dir / "site.yaml")
    ctx = ServerContext(sites, store, tokens, site_dir / "boot")
    runner = HookRunner(ctx.site, store, state_dir, sites.path, timeout_s=120)
    timeouts = Timeouts(installed=5, poll=0.05)
    pipeline = Pipeline(store, ctx.site, boot, timeouts, actor="daemon", hooks=runner)
    app = Flask("test")
    app.register_blueprint(blueprint(ctx, state_dir))
    try:
        for url in serve(app):
            yield Lab(url, store, tokens, state_dir, boot, pipeline)
    finally:
        store.close()


@pytest.fixture
def lab(lab_site_dir: Path) -> Iterator[Lab]:
    yield from make_lab(lab_site_dir, BootDiskRecorder())


def callbacks(store: Store, name: str = NODE) -> list[tuple[str | None, str]]:
    return [(e.event, e.message) for e in store.events(name) if e.kind is EventKind.CALLBACK]


def test_installed_node_is_handed_to_its_hooks_and_pulls_its_bundle(
    lab: Lab, tmp_path: Path
) -> None:
    token = lab.deploy()
    assert lab.post(NODE, {"status": "started", "message": "anaconda %pre"}, token) == 202
    assert lab.post(NODE, {"status": "installed"}, token) == 202
    assert callbacks(lab.store) == [("started", "anaconda %pre"), ("installed", "")]

    record = lab.store.get(NODE)
    assert not record.build_mode  # the next network boot goes to the local disk
    assert record.state == NodeState.INSTALLING  # the route moved nothing
    assert lab.boot.calls == []

    assert lab.drive() == NodeState.ACTIVE, lab.store.get(NODE).reason
    assert lab.boot.calls == [(NODE, "disk", True)]  # the BMC boots the disk, for good
    events = lab.store.events(NODE)
    path = [(e.to_state, e.actor) for e in events if e.kind is EventKind.TRANSITION]
    assert path[-3:] == [("installed", "daemon"), ("configuring", "daemon"), ("active", "daemon")]
    hooks = [e.message.split("\n")[0] for e in events if e.kind is EventKind.HOOK]
    assert hooks == [
        "hook common/10-record-context exited 0",
        "hook controller/50-ha-bundle done in-process",
    ]
    assert lab.store.get(NODE).step is None

    # the node fetches its own bundle with its (spent) deploy token, as its first boot does
    tgz = tmp_path / "bundle.tgz"
    assert lab.fetch_bundle(NODE, token, tgz) == 200
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
        cfg = tar.extractfile("haproxy/haproxy.cfg").read().decode()  # type: ignore[union-attr]
    assert {"keepalived/keepalived.conf", "mysql/galera.cnf", "MANIFEST"} <= set(names)
    assert "bind 203.0.113.10:5000" in cfg
    # nobody else gets it: not with a wrong token, not with another node's name
    assert lab.fetch_bundle(NODE, "x" * 43, tmp_path / "no.tgz") == 403
    assert lab.fetch_bundle("ctl2", token, tmp_path / "no2.tgz") == 403
    # once the node is deployed again, the old deploy's token fetches nothing
    lab.store.transition(NODE, "reprovision", actor="test")
    lab.store.start_build_mode(NODE, actor="test")
    assert lab.fetch_bundle(NODE, token, tmp_path / "old.tgz") == 403


def test_wrong_token_changes_nothing_and_is_logged_without_the_token(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    token = lab.deploy()
    before = lab.snapshot()
    wrong = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with caplog.at_level(logging.WARNING):
        assert lab.post(NODE, {"status": "installed"}, wrong) == 403
        assert lab.post(NODE, {"status": "failed", "message": "x"}, None) == 403
        assert lab.post(NODE, {"status": "installed"}, wrong, query=True) == 403
        # another node's live token is no good for this node either
        other = lab.deploy("ctl2")
        assert lab.post(NODE, {"status": "installed"}, other) == 403
    assert lab.snapshot() == before
    assert lab.boot.calls == []
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 4
    assert all("node ctl1" in m and "127.0.0.1" in m for m in rejected)
    assert not any(t in caplog.text for t in (token, wrong, other))


def test_replayed_installed_callback_is_rejected(lab: Lab) -> None:
    token = lab.deploy()
    assert lab.post(NODE, {"status": "installed"}, token, query=True) == 202
    before = lab.snapshot()
    assert lab.post(NODE, {"status": "installed"}, token) == 403
    assert lab.post(NODE, {"status": "failed", "message": "replay"}, token) == 403
    assert lab.snapshot() == before
    assert callbacks(lab.store) == [("installed", "")]


def test_first_boot_reports_booted_with_the_spent_token_only(lab: Lab) -> None:
    """The installed system's first-boot unit reports "booted" after the install spent its
    token: accepted for that node only, recorded with the kernel, refused before install."""
    token = lab.deploy()
    booted = {"status": "booted", "kernel": "6.1.0-57-cloud-amd64"}
    assert lab.post(NODE, booted, token) == 403  # still installing: nothing booted yet
    assert lab.post(NODE, {"status": "installed"}, token) == 202
    assert lab.drive() == NodeState.ACTIVE
    assert lab.post(NODE, booted, "x" * 43) == 403
    assert lab.post("ctl2", booted, token) == 403
    assert lab.post(NODE, booted, token) == 202
    assert callbacks(lab.store)[-1] == ("booted", "booted from disk: kernel 6.1.0-57-cloud-amd64")
    # deployed again: the old install's token reports nothing
    lab.store.transition(NODE, "reprovision", actor="test")
    lab.store.start_build_mode(NODE, actor="test")
    assert lab.post(NODE, booted, token) == 403


def test_racing_final_callbacks_are_recorded_once(lab: Lab) -> None:
    for name in ("ctl1", "ctl2", "ctl3"):  # a few tries at the race
        token = lab.deploy(name)
        mark = lab.store.last_event_id(name)
        bodies = [{"status": "installed"}, {"status": "failed", "message": "x"}] * 2
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lab.post, [name] * 4, bodies, [token] * 4))
        assert sorted(codes) == [202, 403, 403, 403], codes
        assert len(lab.store.events_after(name, mark, kind=EventKind.CALLBACK)) == 1


def test_expired_token_is_rejected(lab_site_dir: Path) -> None:
    for lab in make_lab(lab_site_dir, BootDiskRecorder(), max_age=timedelta(seconds=0)):
        token = lab.deploy()
        time.sleep(0.01)
        before = lab.snapshot()
        assert lab.post(NODE, {"status": "installed"}, token) == 403
        assert lab.snapshot() == before


def test_installer_failure_fails_the_node_with_its_message(lab: Lab) -> None:
    token = lab.deploy()
    assert (
        lab.post(NODE, {"status": "failed", "message": "no disk matches the layout"}, token) == 202
    )
    record = lab.store.get(NODE)
    assert not record.build_mode  # the token died with the install: no reinstall loop
    assert lab.drive() == NodeState.INSTALLING_FAILED
    assert lab.store.get(NODE).reason == "installer failed: no disk matches the layout"
    assert lab.boot.calls == []


def test_plain_curl_without_content_type_works(lab: Lab) -> None:
    token = lab.deploy()
    url = f"{lab.url}/api/v1/nodes/{NODE}/callback?token={token}"
    out = run(["curl", "-sS", "-w", "\n%{http_code}", "-d", '{"status": "started"}', url]).stdout
    assert out.endswith("\n202")
    assert json.loads(out.rsplit("\n", 1)[0]) == {
        "node": NODE,
        "status": "started",
        "state": "installing",
    }


def test_bad_status_is_a_client_error_that_changes_nothing(lab: Lab) -> None:
    token = lab.deploy()
    before = lab.snapshot()
    assert lab.post(NODE, {"status": "done"}, token) == 400
    assert lab.post(NODE, ["installed"], token) == 400
    assert lab.snapshot() == before


def test_bmc_failure_leaves_the_node_failed_with_the_reason(lab_site_dir: Path) -> None:
    from provisioner.errors import ProvisionerError

    boot = BootDiskRecorder(ProvisionerError("node ctl1: BMC 127.0.0.1:6230 did not answer"))
    for lab in make_lab(lab_site_dir, boot):
        token = lab.deploy()
        assert lab.post(NODE, {"status": "installed"}, token) == 202
        assert lab.drive() == NodeState.INSTALLED_FAILED
        record = lab.store.get(NODE)
        assert record.reason == (
            "boot device to disk: node ctl1: BMC 127.0.0.1:6230 did not answer"
        )
        assert not record.build_mode
        assert not [e for e in lab.store.events(NODE) if e.kind is EventKind.HOOK]


def test_blueprint_defaults_to_the_stores_state_dir(lab_site_dir: Path) -> None:
    state_dir = lab_site_dir / "state"
    store = Store.open(state_dir)
    tokens = DeployTokens.from_state_dir(state_dir)
    ctx = ServerContext(SiteSource(lab_site_dir / "site.yaml"), store, tokens, lab_site_dir)
    app = Flask("default")
    app.register_blueprint(blueprint(ctx))
    try:
        for url in serve(app):
            pipeline = Pipeline(store, ctx.site, BootDiskRecorder())
            lab = Lab(url, store, tokens, state_dir, BootDiskRecorder(), pipeline)
            lab.deploy()
            before = lab.snapshot()
            assert lab.post(NODE, {"status": "installed"}, "not-the-token") == 403
            assert lab.snapshot() == before
    finally:
        store.close()


APPLIED = {
    "status": "applied",
    "services": [
        {"name": "files", "result": "ok", "seconds": 1, "detail": "20 files in /etc"},
        {"name": "galera", "result": "ok", "seconds": 38, "detail": "wsrep_cluster_size=3 Primary"},
    ],
}


def test_the_apply_report_is_taken_only_from_the_node_while_configuring_and_checked(
    lab: Lab, tmp_path: Path
) -> None:
    """The installed system's apply unit: it pulls this deployment's bundle only (404 until
    the hooks wrote it, whatever an earlier deployment left), and its report is refused
    unless it comes with the node's spent token, while configuring, in the schema."""
    token = lab.deploy()
    BundleStore(lab.state_dir).write(NODE, {"old/file.conf": "x\n"})  # an earlier deployment's
    assert lab.post(NODE, {"status": "installed"}, token) == 202
    assert lab.fetch_bundle(NODE, token, tmp_path / "stale.tgz") == 404  # not this deploy's
    assert lab.post(NODE, APPLIED, token) == 409  # installing: no bundle was applied yet
    lab.store.transition(NODE, "installed", actor="test")
    lab.store.transition(NODE, "configure", actor="test")
    time.sleep(0.01)
    BundleStore(lab.state_dir).write(NODE, {"new/file.conf": "y\n"})  # the hooks ran
    assert lab.fetch_bundle(NODE, token, tmp_path / "new.tgz") == 200
    before = lab.snapshot()
    bad: list[object] = [
        APPLIED | {"extra": 1},  # unknown field
        APPLIED | {"services": [{"name": "Galera DB", "result": "ok"}]},  # not a service name
        APPLIED | {"services": [{"name": "galera", "result": "fine"}]},
        APPLIED | {"services": [{"name": "galera", "result": "ok", "seconds": "4"}]},
        APPLIED | {"services": [{"name": "galera", "result": "ok", "detail": "x" * 201}]},
        APPLIED | {"services": [{"name": f"s{i}", "result": "ok"} for i in range(33)]},
        APPLIED | {"services": [{"name": "galera", "result": "failed"}]},  # applied, yet failed
        {"status": "apply-failed", "services": APPLIED["services"], "failed_service": "galera"},
        {"status": "apply-failed", "services": [], "failed_service": "x", "log": "y" * 2001},
    ]
    for body in bad:
        assert lab.post(NODE, body, token) == 400, body
    assert lab.post(NODE, APPLIED, "x" * 43) == 403
    assert lab.post("ctl2", APPLIED, token) == 403
    assert lab.snapshot() == before  # nothing of it recorded
    assert lab.post(NODE, APPLIED, token) == 202
    assert callbacks(lab.store)[-1] == (
        "applied",
        "bundle applied: files ok (1 s), galera ok (38 s)",
    )
