"""Live progress of many nodes: a table that redraws on a terminal, lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.live import Live
from rich.table import Table

from provisioner.cli.output import console, styled_state
from provisioner.state.machine import NodeState


@dataclass(frozen=True)
class NodeView:
    name: str
    state: str | None
    step: str | None
    reason: str | None


TERMINAL = {NodeState.ACTIVE.value, NodeState.DECOMMISSIONED.value}


def _finished(view: NodeView) -> bool:
    return view.state in TERMINAL or (view.state or "").endswith("failed")


def _table(views: Sequence[NodeView], elapsed: float) -> Table:
    done = sum(1 for v in views if _finished(v))
    table = Table(
        title=f"{done}/{len(views)} node(s) finished, {elapsed:.0f}s",
        title_justify="left",
        header_style="bold",
    )
    for col in ("NODE", "STATE", "STEP", "REASON"):
        table.add_column(col, no_wrap=col != "REASON")
    for v in views:
        table.add_row(v.name, styled_state(v.state), v.step or "", v.reason or "")
    return table


def watch(
    fetch: Callable[[], list[NodeView]], done: Callable[[], bool], interval: float = 1.0
) -> None:
    """Show progress until ``done()``; the per-node states come from ``fetch()``."""
    started = time.monotonic()
    out = console()
    if sys.stdout.isatty():
        with Live(_table(fetch(), 0), console=out, refresh_per_second=4) as live:
            while not done():
                time.sleep(interval)
                live.update(_table(fetch(), time.monotonic() - started))
            live.update(_table(fetch(), time.monotonic() - started))
        return
    last: dict[str, tuple[str | None, str | None]] = {}
    while True:
        finished = done()
        for v in fetch():
            key = (v.state, v.step)
            if last.get(v.name) != key:
                last[v.name] = key
                step = f" ({v.step})" if v.step else ""
                out.print(
                    f"{time.monotonic() - started:6.0f}s {v.name}: {v.state}{step}", markup=False
                )
        if finished:
            return
        time.sleep(interval)
