"""Where each lab node's minutes went in its latest deployment (print only).

Run from the repository root after `make demo` (or any `lab rebuild`):
``python3 benchmarks/lab_phases.py [LAB_DIR]`` (default: .demo/state/lab).
Per node, from its event log and the lab installer's console: firmware (power
cycle to the install boot script), installer (boot script to the "installed"
callback, less the image), image (download and unpack), first boot (installed
callback to the installed system's "booted" callback: reboot, firmware, GRUB,
kernel, systemd), pipeline (waiting for a fan-out slot before the power cycle,
and the hooks after "booted") and the total (-> provisioning to -> active).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.state.store import Store
from provisioner_lab.report import (
    Phases,
    batch_starts,
    image_transfer_seconds,
    latest_deployment,
    phases,
)

COLUMNS = ("firmware", "installer", "image", "first_boot", "pipeline", "total")


def _s(value: float | None) -> str:
    return f"{value:7.0f}" if value is not None else "      -"


def main(lab_dir: Path) -> None:
    store = Store.open(lab_dir)
    try:
        deployments = {r.name: latest_deployment(store.events(r.name)) for r in store.all()}
        batches = batch_starts(list(deployments.values()))
        rows: dict[str, Phases] = {}
        for name, d in deployments.items():
            console = lab_dir / "serial" / f"{name}.log"
            text = console.read_text(errors="replace") if console.exists() else ""
            rows[name] = phases(d, image_transfer_seconds(text), batches.get(d.started))
    finally:
        store.close()
    print(f"lab {lab_dir}: seconds per phase of each node's latest deployment")
    print(f"{'node':8}" + "".join(f"{c:>11}" for c in COLUMNS))
    for name, p in rows.items():
        print(f"{name:8}" + "".join("    " + _s(getattr(p, c)) for c in COLUMNS))
    totals = [p.total for p in rows.values() if p.total is not None]
    if totals:
        print(f"slowest node {max(totals):.0f} s; sum over nodes {sum(totals):.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".demo/state/lab").resolve())
