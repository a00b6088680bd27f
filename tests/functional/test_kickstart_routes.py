"""GET /ks/<node>?token=... through a real WSGI server on loopback, fetched with curl."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from provisioner import programs
from provisioner.bootserver.context import ServerContext
from provisioner.bootserver.ks_routes import blueprint
from provisioner.inventory.source import SiteSource
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens


@dataclass
class Served:
    url: str
    ctx: ServerContext


@pytest.fixture
def served(site_dir: Path, tmp_path: Path) -> Iterator[Served]:
    state = tmp_path / "state"
    store = Store.open(state)
    ctx = ServerContext(
        sites=SiteSource(site_dir / "site.yaml"),
        store=store,
        tokens=DeployTokens.from_state_dir(state),
        boot_files_dir=tmp_path / "boot",
    )
    app = Flask("ks-test")
    app.register_blueprint(blueprint(ctx))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", ctx)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()


def curl(url: str) -> tuple[int, str]:
    result = subprocess.run(
        [programs.path("curl"), "-sS", "-m", "60", "-o", "-", "-w", "\n%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    body, _, code = result.stdout.rpartition("\n")
    return int(code), body


def deploying(ctx: ServerContext, name: str) -> str:
    """Enroll the node, move it to booting with build mode on; returns its token."""
    store = ctx.store
    store.enroll(name)
    for event in ("manage", "provision", "boot"):
        store.transition(name, event)
    store.start_build_mode(name)
    token = ctx.tokens.token_for(store.get(name))
    assert token is not None
    return token


def test_the_node_gets_its_kickstart_with_its_token(served: Served) -> None:
    token = deploying(served.ctx, "ctl1")
    code, body = curl(f"{served.url}/ks/ctl1?token={token}")
    assert code == 200
    assert body.startswith("# Kickstart for ctl1.lab.example.test: role controller")
    assert f"PROVISIONER_TOKEN={token}\n" in body
    assert "PROVISIONER_CALLBACK=http://192.0.2.2:8080/api/v1/nodes/ctl1/callback\n" in body
    store = served.ctx.store
    # the route reports, the pipeline moves the node: it is still booting here
    assert store.get("ctl1").state == NodeState.BOOTING
    kinds = [(e.kind, e.event, e.message) for e in store.events("ctl1")][-1:]
    assert kinds == [(EventKind.KICKSTART_SERVED, None, "kickstart served")]
    # the installer may fetch again (a retry); each fetch is recorded, nothing moves
    assert curl(f"{served.url}/ks/ctl1?token={token}")[0] == 200
    assert store.get("ctl1").state == NodeState.BOOTING
    served_events = store.events_after("ctl1", 0, kind=EventKind.KICKSTART_SERVED)
    assert len(served_events) == 2
    assert [e.kind for e in store.events("ctl1")].count(EventKind.TRANSITION) == 4


def test_bad_tokens_get_a_bare_403_and_a_warning_without_the_token(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    token = deploying(served.ctx, "cmp1")
    other = deploying(served.ctx, "cmp2")
    caplog.set_level(logging.WARNING, logger="provisioner.bootserver.ks_routes")
    for query in ("", "?token=", f"?token={token[:-2]}xx", f"?token={other}"):
        code, body = curl(f"{served.url}/ks/cmp1{query}")
        assert (code, body) == (403, ""), query
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 4 and all(
        w.startswith("node cmp1: kickstart refused") for w in warnings
    )
    assert not any(token in w or other in w or token[:-2] in w for w in warnings)
    assert served.ctx.store.get("cmp1").state == NodeState.BOOTING  # nothing moved
    assert "kickstart served" not in [e.message for e in served.ctx.store.events("cmp1")]


def test_spent_and_expired_tokens_are_refused(served: Served) -> None:
    token = deploying(served.ctx, "net1")
    served.ctx.tokens = DeployTokens(b"k" * 32, max_age=timedelta(hours=6))  # other key
    assert curl(f"{served.url}/ks/net1?token={token}")[0] == 403
    served.ctx.tokens = DeployTokens.from_state_dir(
        Path(served.ctx.store.url.removeprefix("sqlite:///")).parent, max_age=timedelta(0)
    )
    assert curl(f"{served.url}/ks/net1?token={token}")[0] == 403  # expired
    served.ctx.tokens = DeployTokens.from_state_dir(
        Path(served.ctx.store.url.removeprefix("sqlite:///")).parent
    )
    assert curl(f"{served.url}/ks/net1?token={token}")[0] == 200
    served.ctx.store.end_build_mode("net1")  # the token is spent
    assert curl(f"{served.url}/ks/net1?token={token}")[0] == 403


def test_unknown_and_unenrolled_nodes_are_refused_alike(served: Served) -> None:
    assert curl(f"{served.url}/ks/nosuchnode?token=abc") == (403, "")
    assert curl(f"{served.url}/ks/sto1?token=abc") == (403, "")  # in site.yaml, not enrolled


def test_head_probe_changes_nothing(served: Served) -> None:
    token = deploying(served.ctx, "cmp3")
    result = subprocess.run(
        [
            programs.path("curl"),
            "-sS",
            "-I",
            "-m",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{served.url}/ks/cmp3?token={token}",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    assert result.stdout == "200"
    assert served.ctx.store.get("cmp3").state == NodeState.BOOTING
    assert "kickstart served" not in [e.message for e in served.ctx.store.events("cmp3")]
