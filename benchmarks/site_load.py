#!/usr/bin/env python3
"""Loading and validating a 10,000-node site: first load, then from the cache.

`provisioner validate` on the generated site (benchmarks/bootserver.py's
big_site) with a fresh state dir (libyaml's C parser, then validation), then
again (the validated site comes from the state dir's cache, keyed by the
SHA-256 of the text). The reference is PyYAML's own `yaml.safe_load` of the
same file with the pure-Python loader (what the site loader was built on).

    python3 benchmarks/site_load.py [--nodes 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootserver import big_site
from results import record

GOAL_S = 1.0


def _validate(exe: str, site: Path, state: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [exe, "--site", str(site), "--state-dir", str(state), "validate"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("provisioner"))  # this environment's script
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp_name:
        tmp = Path(tmp_name)
        site = big_site(tmp, args.nodes)
        state = tmp / "state"
        state.mkdir(mode=0o700)
        text = site.read_text()
        start = time.perf_counter()
        yaml.load(text, Loader=yaml.SafeLoader)
        reference = time.perf_counter() - start
        cold = _validate(exe, site, state)
        warm = sorted(_validate(exe, site, state) for _ in range(args.runs))[args.runs // 2]
        print(f"{args.nodes}-node site, {len(text) / 1e6:.1f} MB")
        print(f"  PyYAML safe_load (pure Python, parse only): {reference:.2f} s")
        print(f"  provisioner validate, first (C parser + validation): {cold:.2f} s")
        print(f"  provisioner validate, cached (median of {args.runs}): {warm:.2f} s")
        record(
            f"validate {args.nodes:,}-node site, first load",
            cold,
            "s",
            "-",
            True,
            reference=reference,
            reference_name="PyYAML safe_load",
        )
        record(
            f"validate {args.nodes:,}-node site (cached)",
            warm,
            "s",
            f"< {GOAL_S:g} s",
            warm < GOAL_S,
            reference=reference,
            reference_name="PyYAML safe_load",
        )


if __name__ == "__main__":
    main()
