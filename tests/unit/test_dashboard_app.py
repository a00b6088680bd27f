"""The dashboard's rules without a browser: login, CSRF, headers, the quorum answer,
rack placement (Flask's test client over the example site and a real store)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from provisioner.daemon.jobs import JobManager
from provisioner.daemon.ui import views
from provisioner.daemon.ui.app import create_ui_app
from provisioner.inventory import load_site
from provisioner.pipeline.factory import build_operations
from provisioner.settings import StateDir
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import Store

TOKEN = "admin-token-for-tests"
ORIGIN = {"Origin": "http://localhost"}


@pytest.fixture
def client(site_dir: Path, tmp_path: Path) -> Iterator[tuple[FlaskClient, Store]]:
    site = load_site(site_dir / "site.yaml")
    store = Store.open(tmp_path / "state")
    ops = build_operations(store, lambda: site, site_dir / "site.yaml", tmp_path / "state", "t")
    app = create_ui_app(ops, JobManager(), TOKEN, tmp_path / "state")
    yield app.test_client(), store
    store.close()


def login(c: FlaskClient, token: str = TOKEN) -> str:
    """Log in; the CSRF token of the session."""
    form = c.get("/login").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce
    c.post("/login", data={"nonce": nonce[1], "token": token}, headers=ORIGIN)
    page = c.get("/nodes", headers={"Accept": "text/html"})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf, page.text[:300]
    return csrf[1]


def test_login_gives_a_strict_httponly_cookie_and_never_echoes_the_token(client) -> None:
    c, _ = client
    assert c.get("/nodes", headers={"Accept": "text/html"}).headers["Location"] == "/login"
    form = c.get("/login").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)[1]  # type: ignore[index]
    bad = c.post("/login", data={"nonce": nonce, "token": "wrong"}, headers=ORIGIN)
    assert bad.status_code == 401
    nonce = re.search(r'name="nonce" value="([^"]+)"', bad.text)[1]  # type: ignore[index]
    ok = c.post("/login", data={"nonce": nonce, "token": TOKEN}, headers=ORIGIN)
    assert ok.status_code == 303
    cookie = [h for h in ok.headers.getlist("Set-Cookie") if h.startswith("provisioner_session=")]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=Strict" in cookie[0]
    assert TOKEN not in cookie[0]
    page = c.get("/nodes", headers={"Accept": "text/html"})
    assert page.status_code == 200 and TOKEN not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_login_from_another_site_is_refused(client) -> None:
    c, _ = client
    nonce = re.search(r'name="nonce" value="([^"]+)"', c.get("/login").text)[1]  # type: ignore[index]
    evil = {"Origin": "http://evil.example"}
    assert c.post("/login", data={"nonce": nonce, "token": TOKEN}, headers=evil).status_code == 403


def test_every_post_needs_the_csrf_token_and_same_origin(client) -> None:
    c, _ = client
    csrf = login(c)
    body = {"action": "power-off", "nodes": ["cmp1"]}
    assert c.post("/actions", json=body).status_code == 403
    assert c.post("/actions", json=body, headers={"X-CSRF-Token": "x"}).status_code == 403
    other = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert c.post("/actions", json=body, headers=other).status_code == 403
    assert c.post("/logout").status_code == 403  # logging out is an action too
    check = c.post("/actions/check", json=body, headers={"X-CSRF-Token": csrf})
    assert check.status_code == 200 and check.json["allowed"] is True


def test_the_quorum_guard_answers_before_a_controller_reprovision(client) -> None:
    c, store = client
    csrf = login(c)
    for name in ("ctl1", "ctl2", "ctl3"):
        store.enroll(name)
    # ctl1 and ctl2 active, ctl3 failed: taking ctl1 down leaves 1 of 3
    _force_state(store, "ctl1", NodeState.ACTIVE)
    _force_state(store, "ctl2", NodeState.ACTIVE)
    _force_state(store, "ctl3", NodeState.INSTALLING_FAILED)
    headers = {"X-CSRF-Token": csrf}
    check = c.post("/actions/check", json={"action": "reprovision", "nodes": ["ctl1"]},
                   headers=headers)  # fmt: skip
    assert check.json["allowed"] is False
    assert "would leave 1 of 3 controllers healthy" in check.json["refusal"]
    assert "1 of 3 controllers stay healthy (ctl2)" in check.json["quorum"]
    started = c.post("/actions", json={"action": "reprovision", "nodes": ["ctl1"]},
                     headers=headers)  # fmt: skip
    assert started.status_code == 409
    unknown = c.post("/actions", json={"action": "provision", "nodes": ["nope"]}, headers=headers)
    assert unknown.status_code == 404


def _force_state(store: Store, name: str, state: NodeState) -> None:
    """Put a node in a state directly (the pipeline's path there is tested elsewhere)."""
    from provisioner.state.store import NodeRow

    with store.writing() as s:
        row = s.get(NodeRow, name)
        assert row is not None
        row.state = state.value


def test_racks_place_nodes_at_their_units_and_list_the_rest() -> None:
    rows = [
        {"name": "a", "rack": "r1", "position": 44},
        {"name": "b", "rack": "r1", "position": None},
        {"name": "c", "rack": "", "position": None},
    ]
    r1, loose = views.racks(rows)
    assert r1.name == "r1" and r1.units == 44 and r1.slots[44]["name"] == "a"
    assert [u for u, _ in r1.top_down()][:2] == [44, 43]
    assert [r["name"] for r in r1.unplaced] == ["b"]
    assert loose.name == "" and [r["name"] for r in loose.unplaced] == ["c"]


def test_the_node_page_shows_log_hooks_dns_and_the_serial_console(client, tmp_path) -> None:
    c, store = client
    login(c)
    store.enroll("ctl1")
    store.add_event("ctl1", "hook common/10-hello exited 0\nhello from the hook",
                    EventKind.HOOK, "pipeline", event="ok")  # fmt: skip
    serial = StateDir(tmp_path / "state").serial_log("ctl1")
    serial.parent.mkdir(parents=True)
    serial.write_bytes(b"x" * 20000 + b"\r\nDebian GNU/Linux 12 ctl1 ttyS0\r\n<script>\r\n")
    page = c.get("/nodes/ctl1", headers={"Accept": "text/html"}).text
    assert "hello from the hook" in page  # the hook's output, from the event log
    assert "ctl1.lab.example.test." in page and "11.2.0.192.in-addr.arpa." in page
    assert "Debian GNU/Linux 12 ctl1 ttyS0" in page  # the console's tail, escaped
    assert "<script>" not in page.split("Serial console")[1] and "&lt;script&gt;" in page
    assert "x" * 16385 not in page  # only the tail
    assert c.get("/nodes/nope", headers={"Accept": "text/html"}).status_code == 404
