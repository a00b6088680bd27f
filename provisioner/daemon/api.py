"""The daemon's REST API (token-authenticated; OpenAPI spec served by spectree).

GET  /api/v1/nodes               every node, inventory and state
GET  /api/v1/nodes/<name>        one node with its recent events
POST /api/v1/operations          provision | reprovision | rebuild | decommission | rerun-hooks
GET  /api/v1/jobs, /jobs/<id>    progress and per-node results
GET  /api/v1/doc/openapi.json    the spec (no token needed)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from flask import Blueprint, Flask, request
from pydantic import BaseModel, Field, RootModel
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from provisioner.daemon.apitoken import token_matches
from provisioner.daemon.jobs import JobManager
from provisioner.errors import NodeReserved, ProvisionerError, QuorumAtRisk, UnknownNode
from provisioner.pipeline.operations import NodeResult, Operations

log = logging.getLogger(__name__)


class NodeOut(BaseModel):
    name: str
    role: str
    ip: str
    state: str | None
    reason: str | None = None
    step: str | None = None
    build_mode: bool = False
    state_since: str | None = None


class NodeList(BaseModel):
    nodes: list[NodeOut]


class EventOut(BaseModel):
    at: str
    kind: str
    event: str | None = None
    message: str


class NodeDetail(NodeOut):
    events: list[EventOut]


class OperationIn(BaseModel):
    action: Literal["provision", "reprovision", "rebuild", "decommission", "rerun-hooks"]
    nodes: list[str] = Field(default_factory=list, max_length=10000)
    role: str | None = None
    rack: str | None = None
    all: bool = False
    force: bool = Field(False, description="Override the quorum guard")


class ResultOut(BaseModel):
    name: str
    state: str
    reason: str | None
    seconds: float


class JobOut(BaseModel):
    id: str
    kind: str
    nodes: list[str]
    running: bool
    started_at: str
    finished_at: str | None
    error: str | None
    results: list[ResultOut]


class JobList(BaseModel):
    jobs: list[JobOut]


class ErrorOut(BaseModel):
    error: str


class ValidationIssue(BaseModel):
    """One problem with a request body, as pydantic reports it."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None
    url: str | None = None


class ValidationIssues(RootModel[list[ValidationIssue]]):
    pass


def _spec() -> SpecTree:
    return SpecTree(
        "flask",
        path="api/v1/doc",
        title="provisioner",
        version="v1",
        security_schemes=[
            SecurityScheme(
                name="bearer",
                data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"),
            )
        ],
        security={"bearer": []},
        validation_error_model=ValidationIssues,
        annotations=True,
    )


def register_api(app: Flask, operations: Operations, jobs: JobManager, api_token: str) -> None:
    """Add the API's routes and its OpenAPI spec to ``app``."""
    spec = _spec()
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    store = operations.store

    @bp.before_request
    def _authenticate() -> tuple[dict[str, str], int] | None:
        if not token_matches(api_token, request.headers.get("Authorization")):
            log.warning(
                "API: rejected %s %s from %s: bad or missing token",
                request.method,
                request.path,
                request.remote_addr,
            )
            return {"error": "a valid API token is required"}, 401
        if request.method == "POST" and not request.is_json:
            return {"error": "send the request body as application/json"}, 415
        return None

    def node_out(name: str) -> NodeOut:
        site = operations.site()
        node = site.node(name)
        rec = store.find(name)
        return NodeOut(
            name=name,
            role=node.role,
            ip=str(node.ip),
            state=rec.state.value if rec else None,
            reason=rec.reason if rec else None,
            step=rec.step if rec else None,
            build_mode=rec.build_mode if rec else False,
            state_since=rec.as_dict()["state_since"] if rec else None,
        )

    @bp.get("/nodes")
    @spec.validate(resp=Response(HTTP_200=NodeList, HTTP_401=ErrorOut), tags=["nodes"])
    def list_nodes() -> NodeList:
        return NodeList(nodes=[node_out(n.name) for n in operations.site().nodes])

    @bp.get("/nodes/<name>")
    @spec.validate(
        resp=Response(HTTP_200=NodeDetail, HTTP_404=ErrorOut, HTTP_401=ErrorOut), tags=["nodes"]
    )
    def show_node(name: str) -> NodeDetail | tuple[ErrorOut, int]:
        try:
            base = node_out(name)
        except UnknownNode as exc:
            return ErrorOut(error=str(exc)), 404
        events = store.events(name, limit=20) if store.find(name) else []
        return NodeDetail(
            **base.model_dump(),
            events=[
                EventOut(at=e.as_dict()["at"], kind=e.kind, event=e.event, message=e.message)
                for e in events
            ],
        )

    @bp.post("/operations")
    @spec.validate(
        json=OperationIn,
        resp=Response(
            HTTP_202=JobOut,
            HTTP_400=ErrorOut,
            HTTP_404=ErrorOut,
            HTTP_409=ErrorOut,
            HTTP_401=ErrorOut,
            HTTP_415=ErrorOut,
        ),
        tags=["operations"],
    )
    def start_operation(json: OperationIn) -> tuple[JobOut | ErrorOut, int]:
        try:
            names = operations.select(json.nodes, json.role, json.rack, json.all)
            work = operation_work(operations, json, names)
        except UnknownNode as exc:
            return ErrorOut(error=str(exc)), 404
        except (QuorumAtRisk, NodeReserved) as exc:
            return ErrorOut(error=str(exc)), 409
        except ProvisionerError as exc:
            return ErrorOut(error=str(exc)), 400
        job = jobs.submit(json.action, names, work)
        return JobOut.model_validate(job.as_dict()), 202

    @bp.get("/jobs")
    @spec.validate(resp=Response(HTTP_200=JobList, HTTP_401=ErrorOut), tags=["operations"])
    def list_jobs() -> JobList:
        return JobList(jobs=[JobOut.model_validate(j.as_dict()) for j in jobs.all()])

    @bp.get("/jobs/<job_id>")
    @spec.validate(
        resp=Response(HTTP_200=JobOut, HTTP_404=ErrorOut, HTTP_401=ErrorOut), tags=["operations"]
    )
    def show_job(job_id: str) -> JobOut | tuple[ErrorOut, int]:
        job = jobs.get(job_id)
        if job is None:
            return ErrorOut(error=f"no job {job_id}"), 404
        return JobOut.model_validate(job.as_dict())

    app.register_blueprint(bp)
    spec.register(app)


Work = Callable[[Callable[[NodeResult], None]], list[NodeResult]]


def operation_work(operations: Operations, op: OperationIn, names: list[str]) -> Work:
    """Check what can be checked now (quorum), then return the job's work function."""
    from provisioner.pipeline.quorum import guard

    if op.action in ("reprovision", "decommission"):
        guard(operations.site(), operations.states(), names, f"{op.action}ing", op.force)

    def work(on_result: Callable[[NodeResult], None]) -> list[NodeResult]:
        return operations.run(op.action, names, op.force, on_result)

    return work
