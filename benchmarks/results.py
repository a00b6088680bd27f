"""One figure a benchmark measured, for `make bench`'s table (benchmarks/run_all.py).

Each benchmark prints its own detail and calls ``record()`` per goal: the line
is printed and, when BENCH_RESULTS names a file, appended to it as JSON so the
runner can print every figure in one table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence


def record(
    work: str,
    ours: float,
    unit: str,
    goal: str,
    met: bool,
    reference: float | None = None,
    reference_name: str = "",
    note: str = "",
    higher_is_better: bool = False,
) -> None:
    """One row. The table's ratio is how many times better ours is than the reference
    (>1: ours is better): reference/ours for times, ours/reference for rates."""
    ratio = None
    if reference:
        ratio = ours / reference if higher_is_better else (reference / ours if ours else None)
    row = {
        "work": work,
        "ours": ours,
        "unit": unit,
        "reference": reference,
        "reference_name": reference_name,
        "goal": goal,
        "met": met,
        "note": note,
        "ratio": ratio,
        "load": os.getloadavg()[0],
    }
    ref = f"{reference:.3g} {unit} ({reference_name})" if reference is not None else "-"
    verdict = "met" if met else "NOT met"
    print(f"RESULT {work}: {ours:.3g} {unit}; reference {ref}; goal {goal}: {verdict}")
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def median_wall(argv: Sequence[str], runs: int = 5, env: dict[str, str] | None = None) -> float:
    """Median wall-clock seconds of running ``argv`` (output discarded; must exit 0)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.node()}, {os.cpu_count()} CPUs, {python}"
