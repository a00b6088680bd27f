"""Terminal output: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from provisioner.state.machine import NodeState

STATE_STYLES = {
    NodeState.ACTIVE: "green",
    NodeState.DECOMMISSIONED: "dim",
    NodeState.ENROLLED: "cyan",
    NodeState.READY: "cyan",
}


def console(stderr: bool = False) -> Console:
    """Plain lines never wrap; tables get a wide page when output is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    wrap: Sequence[str] = ("MESSAGE", "REASON / SINCE", "REASON"),
) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=col not in wrap)
    for row in rows:
        t.add_row(*row)
    return t


def styled_state(state: NodeState | str | None) -> str:
    if state is None:
        return "[dim]not enrolled[/dim]"
    state = NodeState(state)
    style = "red" if state.is_failed else STATE_STYLES.get(state, "yellow")
    return f"[{style}]{state.value}[/{style}]"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"
