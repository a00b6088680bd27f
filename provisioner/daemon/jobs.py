"""Operations the daemon runs in the background, one job per request."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from provisioner.pipeline.operations import NodeResult

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    kind: str
    nodes: list[str]
    started_at: str
    finished_at: str | None = None
    results: dict[str, NodeResult] = field(default_factory=dict)
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "nodes": self.nodes,
            "running": self.running,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            # a copy first: the job's thread adds results while pages and the API read
            "results": [r.as_dict() for r in list(self.results.values())],
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobManager:
    def __init__(self, keep: int = 200) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def submit(
        self,
        kind: str,
        nodes: list[str],
        work: Callable[[Callable[[NodeResult], None]], list[NodeResult]],
    ) -> Job:
        """Run ``work(on_result)`` in a thread; results land on the job as they come."""
        job = Job(uuid.uuid4().hex[:12], kind, nodes, _now())

        def record(result: NodeResult) -> None:
            with self._lock:
                job.results[result.name] = result

        def run() -> None:
            try:
                for result in work(record):
                    record(result)
            except Exception as exc:
                log.exception("job %s (%s) failed", job.id, kind)
                job.error = str(exc)
            finally:
                job.finished_at = _now()

        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].running:
                    break
                del self._jobs[oldest]
        threading.Thread(target=run, name=f"job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())
