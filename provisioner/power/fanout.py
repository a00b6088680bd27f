"""Power operations over many nodes: bounded concurrency, one result per node.

Each node's operation runs in a worker thread (at most ``fanout`` at once) and
is bounded by its driver's own per-call timeout, so a dead BMC costs its own
timeout and never delays the others. A failure is captured in that node's
result; it never stops the batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionerError
from provisioner.power.base import PowerDriver

log = logging.getLogger(__name__)

DEFAULT_FANOUT = 50


@dataclass(frozen=True)
class NodeResult:
    node: str
    ok: bool
    value: Any = None  # what the operation returned (e.g. "on"/"off")
    error: str | None = None  # one clean line naming node and BMC
    error_type: str | None = None
    seconds: float = 0.0


Operation = Callable[[PowerDriver], Any]
Progress = Callable[[NodeResult], None]


def run_many(
    drivers: Sequence[PowerDriver],
    operation: Operation,
    fanout: int = DEFAULT_FANOUT,
    on_result: Progress | None = None,
) -> list[NodeResult]:
    """Run ``operation(driver)`` for every driver; results in the input order."""
    if fanout < 1:
        raise ValueError("fanout must be at least 1")
    results: dict[int, NodeResult] = {}
    if not drivers:
        return []
    pool = ThreadPoolExecutor(max_workers=min(fanout, len(drivers)), thread_name_prefix="power")
    try:
        futures = {pool.submit(_one, d, operation): i for i, d in enumerate(drivers)}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_result is not None:
                on_result(result)
    except BaseException:  # Ctrl-C: do not start the nodes still waiting for a worker
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(len(drivers))]


def _one(driver: PowerDriver, operation: Operation) -> NodeResult:
    start = time.monotonic()
    try:
        value = operation(driver)
    except ProvisionerError as exc:
        log.warning("%s", exc)
        return NodeResult(
            driver.node,
            False,
            error=str(exc),
            error_type=type(exc).__name__,
            seconds=time.monotonic() - start,
        )
    except Exception as exc:  # a bug or an unmapped library error: keep the batch going
        log.exception("node %s: internal error in power operation", driver.node)
        return NodeResult(
            driver.node,
            False,
            error=f"node {driver.node}: internal error: {type(exc).__name__}",
            error_type=type(exc).__name__,
            seconds=time.monotonic() - start,
        )
    return NodeResult(driver.node, True, value=value, seconds=time.monotonic() - start)


def then(step: Callable[[PowerDriver], None], result: str) -> Operation:
    """An operation that runs ``step`` and answers ``result`` (drivers return None)."""

    def run(driver: PowerDriver) -> str:
        step(driver)
        return result

    return run


#: action -> (what it is called, the operation): the CLI's `power` and the dashboard's
#: power buttons run these same ones
POWER_OPERATIONS: dict[str, tuple[str, Operation]] = {
    "status": ("power status", lambda d: d.power_state()),
    "on": ("power on", then(lambda d: d.power_on(), "on")),
    "off": ("power off", then(lambda d: d.power_off(), "off")),
    "cycle": ("power cycle", then(lambda d: d.power_cycle(), "on")),
    "soft-off": ("soft power off", then(lambda d: d.soft_off(), "off")),
}
