#!/usr/bin/env python3
"""`make bench`: run every benchmark, then print one table of their figures.

Each benchmark prints its own detail and records its figures (results.py);
this runs them one after another (never in parallel: they measure the same 2
cores) and prints work, ours, reference, ratio and goal for all of them, with
the machine, the date and the load average at each measurement (a figure taken
while something else ran is marked). A benchmark that cannot run here (a
reference program missing) is listed as not run, with why.

    python3 benchmarks/run_all.py [--only cli_startup,site_load] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import machine

HERE = Path(__file__).resolve().parent
#: (script, arguments): the issue-20 goals first, then the earlier benchmarks
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("cli_startup.py", []),
    ("site_load.py", []),
    ("serve_start.py", []),
    ("boot_scripts.py", []),
    ("power_status.py", ["--counts", "50,200"]),
    ("dns_publish.py", []),
    ("bootserver.py", ["--only", "tftp", "--only", "http", "--clients", "10", "--clients", "50"]),
]
#: a figure measured at a load average above this (2 cores) is marked
BUSY = 2.5


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def table(rows: list[dict], markdown: bool) -> str:
    head = ["work", "ours", "reference", "ratio", "goal", "met"]
    lines = []
    for r in rows:
        ref = "-"
        if r.get("reference") is not None:
            ref = f"{_fmt(r['reference'], r['unit'])} ({r['reference_name']})"
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        met = ("yes" if r["met"] else "NO") + (" (busy)" if r.get("load", 0) > BUSY else "")
        ours = _fmt(r["ours"], r["unit"]) + (f"; {r['note']}" if r.get("note") else "")
        ours = ours.removeprefix("- ; ")
        lines.append([r["work"], ours, ref, ratio, r["goal"], met])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*line) for line in lines]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names (without .py)")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = dict(os.environ, BENCH_RESULTS=str(results))
        for script, extra in BENCHMARKS:
            if chosen is not None and script.removesuffix(".py") not in chosen:
                continue
            print(f"\n=== {script} {' '.join(extra)}", flush=True)
            proc = subprocess.run([sys.executable, str(HERE / script), *extra], env=env)
            if proc.returncode != 0:
                rows.append(
                    {
                        "work": script, "ours": None, "unit": "", "reference": None,
                        "goal": "-", "met": False, "note": f"not run (exit {proc.returncode})",
                    }
                )  # fmt: skip
            if results.exists():
                rows += [json.loads(line) for line in results.read_text().splitlines()]
                results.unlink()
    print(f"\n{datetime.date.today()}, {machine()}, load average now {os.getloadavg()[0]:.1f}")
    print(table(rows, args.markdown))
    if any(not r["met"] for r in rows):
        print("\nsome goals are not met (see NO above)")


if __name__ == "__main__":
    main()
