"""The installed system's report of applying its HA bundle: schema, bounds, one-line text.

A node's first-boot apply unit (kickstart/snippets/firstboot-callback.j2, running the
bundle's ``apply/apply.sh``) POSTs one of

    {"status": "applied", "services": [{"name": "galera", "result": "ok", "seconds": 41,
                                        "detail": "wsrep_cluster_size=1 Primary"}, ...]}
    {"status": "apply-failed", "services": [...], "failed_service": "rabbitmq",
     "log": "<the failing step's last log lines>"}

Everything in it comes from a machine on the provisioning network, so it is checked
before it is recorded: known keys only, strict types, every string bounded and made
one-line printable text, at most ``MAX_SERVICES`` entries, the failing service one of
the reported ones. A report that does not match is refused (400) and records nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from provisioner.errors import CallbackInvalid

MAX_SERVICES = 32
MAX_DETAIL = 200
#: the log excerpt kept with a failure (the node sends at most this much)
MAX_LOG = 2000
ServiceName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class ServiceResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ServiceName
    result: Literal["ok", "failed", "skipped"]
    seconds: Annotated[int, Field(strict=True, ge=0, le=86400)] = 0
    detail: Annotated[str, StringConstraints(strict=True, max_length=MAX_DETAIL)] = ""


class ApplyReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["applied", "apply-failed"]
    services: Annotated[list[ServiceResult], Field(max_length=MAX_SERVICES)]
    failed_service: ServiceName | None = None
    log: Annotated[str, StringConstraints(strict=True, max_length=MAX_LOG)] = ""
    message: Annotated[str, StringConstraints(strict=True, max_length=500)] = ""

    def text(self) -> str:
        """The event's (and, on failure, the node's reason's) one-line text."""
        if self.status == "applied":
            parts = [f"{s.name} {s.result} ({s.seconds} s)" for s in self.services]
            return "bundle applied: " + (", ".join(parts) or "no services")
        failed = next(s for s in self.services if s.name == self.failed_service)
        done = [s.name for s in self.services if s.result == "ok"]
        text = f"{failed.name} failed"
        if failed.detail:
            text += f": {one_line(failed.detail)}"
        if done:
            text += f" (up before it: {', '.join(done)})"
        if self.log:
            text += f"; log: {one_line(self.log)}"
        return text


def one_line(text: str) -> str:
    """Printable one-line text: line breaks become ' | ', other control characters spaces."""
    lines = [
        "".join(ch if ch.isprintable() else " " for ch in line).strip()
        for line in text.splitlines()
    ]
    return " | ".join(line for line in lines if line)


def parse(node: str, body: dict[str, object]) -> ApplyReport:
    """The validated report, or CallbackInvalid naming the node and the first bad field."""
    try:
        report = ApplyReport.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CallbackInvalid(
            f"node {node}: apply report field '{where}': {first['msg']}"
        ) from None
    names = [s.name for s in report.services]
    if len(set(names)) != len(names):
        raise CallbackInvalid(f"node {node}: apply report field 'services': a name twice")
    failed = [s.name for s in report.services if s.result == "failed"]
    if report.status == "applied":
        if failed or report.failed_service is not None:
            raise CallbackInvalid(
                f"node {node}: apply report says applied but {failed or report.failed_service}"
                " failed"
            )
    elif report.failed_service is None or report.failed_service not in failed:
        raise CallbackInvalid(
            f"node {node}: apply report field 'failed_service' must name a service whose "
            "result is failed"
        )
    return report
