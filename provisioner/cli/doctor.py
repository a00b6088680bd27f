"""`provisioner doctor` and `provisioner deps`: the external programs, from one table.

Both read provisioner/programs.py only: no site.yaml, no state store, so they
work on a machine where nothing is set up yet (which is when they are needed).
"""

from __future__ import annotations

import json

import click

from provisioner import programs

_USE = click.Choice(list(programs.USES))


@click.command()
@click.option(
    "--for",
    "use",
    type=_USE,
    default="serve",
    show_default=True,
    help="serve: a provisioning host; demo: make demo (the lab); test: make test; "
    "bench: benchmarks/.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def doctor(use: str, as_json: bool) -> None:
    """What is installed and what is missing for a use, and the command that fixes it.

    Exits 1 when something that use needs is missing."""
    data = programs.report(use)
    click.echo(json.dumps(data, indent=2) if as_json else programs.render_report(data))
    if not data["ok"]:
        raise SystemExit(1)


@click.command()
@click.option("--for", "use", type=_USE, default="serve", show_default=True)
def deps(use: str) -> None:
    """The Debian packages a use needs, on one line (what `make` installs)."""
    click.echo(" ".join(programs.packages(use)))


COMMANDS = [doctor, deps]
