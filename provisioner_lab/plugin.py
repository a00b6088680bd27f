"""Entry point (``provisioner.commands``): the lab's commands join the CLI, lazily.

The runtime never imports the lab; the CLI finds this module through the entry
point. It only names the commands (importing the lab costs start-up time every
``provisioner`` call would pay); cli.py and vbmc/cli.py load when one runs.
"""

from __future__ import annotations

import click

from provisioner.cli.lazy import LazyGroup

DNS_LAB_HELP = "A BIND config serving this site's zones, updatable with its TSIG key."


def _add_dns_lab(dns_group: click.Command) -> None:
    """`dns lab`, imported only when it runs (provisioner_lab.cli pulls in the store and
    SQLAlchemy: a second of every `dns apply` when it was imported here)."""
    if isinstance(dns_group, LazyGroup):
        dns_group.add_lazy_command("lab", "provisioner_lab.cli:dns_lab", DNS_LAB_HELP)
    elif isinstance(dns_group, click.Group):
        from provisioner_lab.cli import dns_lab

        dns_group.add_command(dns_lab)


def register(cli: LazyGroup) -> None:
    cli.add_lazy_command(
        "lab",
        "provisioner_lab.cli:lab",
        "The built-in virtual lab: qemu nodes provisioned for real over a lab network.",
    )
    cli.add_lazy_command(
        "vbmc",
        "provisioner_lab.vbmc.cli:vbmc",
        "Virtual BMCs (IPMI over LAN) for the built-in lab, demos and benchmarks.",
    )
    cli.after_load("dns", _add_dns_lab)
