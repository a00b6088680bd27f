#!/usr/bin/env python3
"""CLI start-up: `provisioner --help` and `--version`, next to the bare interpreter.

Commands are imported only when they run (provisioner/cli/lazy.py), so these
pay for click and the command table, not for SQLAlchemy, pydantic or Flask.
The reference is `python3 -c pass` with the same interpreter (the floor).

    python3 benchmarks/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import median_wall, record

GOAL_S = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("provisioner"))  # this environment's script
    floor = median_wall([sys.executable, "-c", "pass"], args.runs)
    for argv in ([exe, "--help"], [exe, "--version"], [exe, "vbmc", "--help"]):
        wall = median_wall(argv, args.runs)
        work = "provisioner " + " ".join(argv[1:])
        print(f"{work:<28} {wall:.3f} s (python3 -c pass: {floor:.3f} s)")
        if argv[1] == "--help":
            record(
                "CLI start-up (provisioner --help)",
                wall,
                "s",
                f"< {GOAL_S} s",
                wall < GOAL_S,
                reference=floor,
                reference_name="python3 -c pass",
            )


if __name__ == "__main__":
    main()
