"""The dashboard's routes: server-rendered pages, one event stream, and actions.

GET  /login, POST /login, POST /logout   the admin token for a session cookie
GET  /nodes, /racks, /nodes/<name>       pages (filters are query parameters)
GET  /nodes/<name>/power, /events.json   the BMC's answer; the node's event log
GET  /events                             server-sent events: every node's row and the jobs
POST /actions/check                      what the quorum guard says, before anything happens
POST /actions                            provision | reprovision | decommission | power-*

Pipeline actions go through the admin API's own path (Operations.select, the
quorum guard, one JobManager job); power actions run the CLI's power operations
(power.fanout.POWER_OPERATIONS) as a job. Every POST needs the session's CSRF
token; nothing here ever puts the admin token in a URL, a page or the log.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from provisioner.bootserver import jsonlimits
from provisioner.daemon.api import OperationIn, operation_work
from provisioner.daemon.apitoken import token_matches
from provisioner.daemon.jobs import JobManager
from provisioner.daemon.ui import views
from provisioner.daemon.ui.sessions import COOKIE, LOGIN_COOKIE, Sessions, same_secret
from provisioner.errors import NodeReserved, ProvisionerError, QuorumAtRisk, UnknownNode
from provisioner.pipeline.operations import NodeResult, Operations
from provisioner.power import PowerSettings, driver_for
from provisioner.power.base import PowerDriver
from provisioner.power.fanout import POWER_OPERATIONS, run_many
from provisioner.state.machine import EventKind, NodeState

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PIPELINE_ACTIONS = ("provision", "reprovision", "decommission")
POWER_ACTIONS = {"power-on": "on", "power-off": "off", "power-cycle": "cycle"}
#: actions that take controllers down: the quorum guard answers before anything happens
GUARDED = ("reprovision", "decommission")
#: an event stream ends after this long (the browser reconnects, and the session is
#: checked again); at most STREAMS at once, so pages keep their worker threads
STREAM_SECONDS = 60.0
STREAMS = 16
POLL_SECONDS = 0.5
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class Streams:
    """The open live streams: at most ``limit`` at once, and all ended on ``stop()``.

    A waitress server cannot stop while a stream is open, and must not be closed
    while a stream's last write is still on its way: the daemon stops the streams,
    waits for them to finish, then closes the server."""

    def __init__(self, limit: int = STREAMS) -> None:
        self.limit = limit
        self.stopping = threading.Event()
        self._open = 0
        self._cond = threading.Condition()

    def enter(self) -> bool:
        with self._cond:
            if self._open >= self.limit or self.stopping.is_set():
                return False
            self._open += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._cond:
            self._cond.wait_for(lambda: self._open == 0, timeout)


class Snapshots:
    """Every node's row and the recent jobs as one JSON text, shared by all streams
    and computed at most once per POLL_SECONDS, or less often on a site so large
    that computing it takes long (2,000 nodes: about 0.1 s here): never more than
    a fifth of a core goes to it."""

    def __init__(self, operations: Operations, jobs: JobManager) -> None:
        self.operations, self.jobs = operations, jobs
        self._lock = threading.Lock()
        self._at = 0.0
        self._every = POLL_SECONDS
        self._text = ""

    def get(self) -> str:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self._every or not self._text:
                rows = views.node_rows(self.operations.site(), self.operations.store)
                recent = sorted(self.jobs.all(), key=lambda j: j.started_at, reverse=True)[:10]
                self._text = json.dumps(
                    {"nodes": rows, "jobs": [j.as_dict() for j in recent]}, sort_keys=True
                )
                self._at = time.monotonic()
                self._every = max(POLL_SECONDS, 5 * (self._at - now))
            return self._text


def create_ui_app(
    operations: Operations,
    jobs: JobManager,
    api_token: str,
    state_dir: Path,
    streams: Streams | None = None,
) -> Flask:
    """The dashboard as its own WSGI app (the daemon serves it on --ui-bind);
    ``streams.stop()`` ends its live streams before the server closes."""
    streams = streams or Streams()
    stopping = streams.stopping
    app = Flask(
        "provisioner.daemon.ui",
        root_path=str(HERE),
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 0
    jsonlimits.install(app)
    sessions = Sessions()
    snapshots = Snapshots(operations, jobs)
    open_paths = ("/login", "/static/")

    @app.before_request
    def _guard() -> BaseResponse | tuple[dict[str, str], int] | None:
        if request.path.startswith(open_paths):
            return None
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            # pages (a browser asks for HTML by name) go to the login; the rest is refused
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                return redirect("/login", 303)
            return {"error": "log in first"}, 401
        g.session = session
        if request.method not in ("GET", "HEAD"):
            presented = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
            if not same_secret(session.csrf, presented) or not _same_origin():
                log.warning(
                    "ui: refused %s %s from %s (%s): missing or wrong CSRF token",
                    request.method,
                    request.path,
                    request.remote_addr,
                    session.label,
                )
                return {"error": "missing or wrong CSRF token: reload the page"}, 403
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"  # no-referrer makes Origin "null"
        if not request.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    # ---- login ------------------------------------------------------------------
    @app.get("/login")
    def login_form() -> Response:
        return _login_page("", 200)

    @app.post("/login")
    def login() -> BaseResponse:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not same_secret(nonce or "", request.form.get("nonce")) or not _same_origin():
            return _login_page("The login form expired: try again.", 403)
        if not token_matches(api_token, request.form.get("token")):
            log.warning("ui: failed login from %s", request.remote_addr)
            return _login_page("That is not the admin token.", 401)
        session = sessions.create()
        log.info("ui: %s logged in from %s", session.label, request.remote_addr)
        resp = redirect("/nodes", 303)
        resp.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/",
        )
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    def _login_page(error: str, status: int) -> Response:
        nonce = secrets.token_urlsafe(16)
        resp = Response(render_template("login.html", error=error, nonce=nonce), status)
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/login",
            max_age=600,
        )
        return resp

    @app.post("/logout")
    def logout() -> BaseResponse:
        sessions.end(request.cookies.get(COOKIE))
        resp = redirect("/login", 303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # ---- pages ------------------------------------------------------------------
    def page(template: str, **context: Any) -> str:
        site = operations.site()
        return render_template(
            template,
            csrf=g.session.csrf,
            site_name=site.site.name,
            roles=sorted(site.roles),
            racks_names=sorted({n.rack for n in site.nodes if n.rack}),
            states=[s.value for s in NodeState],
            **context,
        )

    @app.get("/")
    def index() -> BaseResponse:
        return redirect("/nodes", 303)

    @app.get("/nodes")
    def nodes_page() -> str:
        rows = views.node_rows(operations.site(), operations.store)
        wanted = {k: request.args.get(k, "") for k in ("role", "rack", "state")}
        shown = [r for r in rows if all(not v or r[k] == v for k, v in wanted.items())]
        return page("nodes.html", rows=shown, filters=wanted, tab="nodes")

    @app.get("/racks")
    def racks_page() -> str:
        rows = views.node_rows(operations.site(), operations.store)
        return page("racks.html", racks=views.racks(rows), tab="racks")

    @app.get("/nodes/<name>")
    def node_page(name: str) -> str:
        try:
            detail = views.node_detail(operations.site(), operations.store, state_dir, name)
        except UnknownNode:
            abort(404)
        return page("node.html", d=detail, tab="nodes")

    @app.get("/nodes/<name>/events.json")
    def node_events(name: str) -> dict[str, Any]:
        try:
            detail = views.node_detail(operations.site(), operations.store, state_dir, name)
        except UnknownNode:
            abort(404)
        return {"events": detail["events"], "hooks": detail["hooks"]}

    @app.get("/nodes/<name>/power")
    def node_power(name: str) -> tuple[dict[str, Any], int]:
        site = operations.site()
        try:
            driver = driver_for(site, name, PowerSettings(timeout=10), state_dir)
            return {"power": str(driver.power_state())}, 200
        except UnknownNode:
            abort(404)
        except ProvisionerError as exc:
            return {"error": str(exc)}, 200

    # ---- live updates -----------------------------------------------------------
    @app.get("/events")
    def event_stream() -> Response | tuple[dict[str, str], int]:
        if not streams.enter():
            return {"error": "too many live pages open; close one"}, 503

        def stream() -> Iterator[str]:
            try:
                yield "retry: 2000\n\n"
                last, beat = "", time.monotonic()
                deadline = beat + STREAM_SECONDS
                while time.monotonic() < deadline and not stopping.is_set():
                    text = snapshots.get()
                    if text != last:
                        yield f"data: {text}\n\n"
                        last, beat = text, time.monotonic()
                    elif time.monotonic() - beat > 15:
                        yield ": still here\n\n"
                        beat = time.monotonic()
                    stopping.wait(POLL_SECONDS)
            finally:
                streams.leave()

        return Response(
            stream(),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # ---- actions ------------------------------------------------------------------
    def _request_action() -> tuple[str, list[str]]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _BadRequest("send {action, nodes} as JSON")
        action, names = body.get("action"), body.get("nodes")
        if action not in (*PIPELINE_ACTIONS, *POWER_ACTIONS):
            raise _BadRequest(f"unknown action {action!r}")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise _BadRequest("name the nodes: a non-empty list")
        return str(action), operations.select(names)

    @app.post("/actions/check")
    def check_action() -> tuple[dict[str, Any], int]:
        try:
            action, names = _request_action()
        except _BadRequest as exc:
            return {"error": str(exc)}, 400
        except UnknownNode as exc:
            return {"error": str(exc)}, 404
        site, states = operations.site(), operations.states()
        answer = views.quorum_answer(site, states, names)
        allowed, refusal = True, ""
        if action in GUARDED:
            try:
                operation_work(operations, OperationIn(action=action, nodes=names), names)
            except QuorumAtRisk as exc:
                allowed, refusal = False, str(exc).removesuffix("; use --force to do it anyway")
        return {
            "action": action,
            "nodes": names,
            "allowed": allowed,
            "refusal": refusal,
            "quorum": answer if action in (*GUARDED, "power-off", "power-cycle") else "",
        }, 200

    @app.post("/actions")
    def start_action() -> tuple[dict[str, Any], int]:
        try:
            action, names = _request_action()
            if action in PIPELINE_ACTIONS:
                op = OperationIn(action=action, nodes=names)
                job = jobs.submit(action, names, operation_work(operations, op, names))
            else:
                job = jobs.submit(
                    action.replace("-", " "), names, _power_work(POWER_ACTIONS[action], names)
                )
        except _BadRequest as exc:
            return {"error": str(exc)}, 400
        except UnknownNode as exc:
            return {"error": str(exc)}, 404
        except (QuorumAtRisk, NodeReserved) as exc:
            return {"error": str(exc)}, 409
        except ProvisionerError as exc:
            return {"error": str(exc)}, 400
        log.info("ui: %s started %s on %s (job %s)", g.session.label, action, names, job.id)
        return job.as_dict(), 202

    def _power_work(
        what: str, names: list[str]
    ) -> Callable[[Callable[[NodeResult], None]], list[NodeResult]]:
        title, operation = POWER_OPERATIONS[what]
        label = g.session.label
        for name in names:
            if operations.store.find(name):
                operations.store.add_event(
                    name, f"{title} from the dashboard ({label})", EventKind.NOTE, label
                )

        def work(on_result: Callable[[NodeResult], None]) -> list[NodeResult]:
            site = operations.site()
            drivers: list[PowerDriver] = []
            out: list[NodeResult] = []
            for name in names:
                try:
                    drivers.append(driver_for(site, name, PowerSettings(), state_dir))
                except ProvisionerError as exc:
                    out.append(NodeResult(name, "failed", str(exc), 0.0))

            def one(r: Any) -> None:
                on_result(_power_result(r))

            out += [_power_result(r) for r in run_many(drivers, operation, on_result=one)]
            return out

        return work

    return app


def _power_result(r: Any) -> NodeResult:
    """A power fan-out result as a job's result (state: the BMC's answer, or failed)."""
    return NodeResult(r.node, str(r.value) if r.ok else "failed", r.error, r.seconds)


class _BadRequest(ProvisionerError):
    pass


def _same_origin() -> bool:
    """Browsers send Origin on POST; when they do, it must be this very server."""
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")
