"""What `lab up` needs on this host, checked before it starts anything.

Without this check a missing piece showed up minutes later, as one of the
detached processes dying (``serve`` without iPXE binaries), after the lab
network and BIND had been started and torn down again. Checking first makes
the cause the first and only thing the user reads, with the packages to
install, and leaves nothing half started. What the lab needs is the programs
table's "demo" use (provisioner/programs.py), the same list `make demo` installs.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner import programs
from provisioner.errors import ProvisionerError


class LabPrerequisiteMissing(ProvisionerError):
    """Something `lab up` needs is not installed on this host."""


def check(table: Sequence[programs.Program] = programs.TABLE) -> None:
    """Raise one error naming everything missing and the one command that installs it."""
    report = programs.report("demo", table)
    if report["ok"]:
        return
    absent = [row for row in report["programs"] if row["path"] is None]
    lines = [f"  {r['name']}: {r['why']} (Debian package {r['package']})" for r in absent]
    raise LabPrerequisiteMissing(
        f"lab up: {len(absent)} prerequisite(s) missing on this host, nothing was started:\n"
        + "\n".join(lines)
        + "\n  install: "
        + "; ".join(report["fix"])
    )
