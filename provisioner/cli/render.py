"""Render commands: print a node's kickstart or preseed as the node would get it."""

from __future__ import annotations

import logging

import click

from provisioner.cli.context import App
from provisioner.install.images import ImageStore
from provisioner.install.kickstart import TOKEN_PLACEHOLDER, render_kickstart
from provisioner.install.preseed import render_preseed
from provisioner.inventory import Node
from provisioner.state.tokens import DeployTokens

log = logging.getLogger(__name__)
pass_app = click.make_pass_decorator(App)


def node_token(app: App, node: Node) -> str | None:
    """The node's live deploy token when it is in build mode, else None.

    Looks at the state store only if one exists: rendering never creates state.
    """
    settings = app.settings
    has_store = settings.db_url is not None or settings.state.db.exists()
    if not has_store:
        return None
    record = app.store().find(node.name)
    if record is None or not record.build_mode:
        return None
    return DeployTokens.from_state_dir(settings.state_dir).token_for(record)


def _token_or_placeholder(app: App, node: Node) -> str:
    token = node_token(app, node)
    if token is None:
        click.echo(
            f"note: node {node.name} is not in build mode: the token is the placeholder "
            f"{TOKEN_PLACEHOLDER} and its callbacks would be refused",
            err=True,
        )
        return TOKEN_PLACEHOLDER
    return token


@click.group()
def render() -> None:
    """Print what a node's installer would get."""


@render.command()
@click.argument("name")
@click.option("--base-url", default=None, help="Provisioner URL as nodes reach it.")
@click.option(
    "--disks",
    default=None,
    help="Comma-separated disk names (sda,sdb): print the storage commands for these disks "
    "inline instead of choosing disks in %pre.",
)
@pass_app
def kickstart(app: App, name: str, base_url: str | None, disks: str | None) -> None:
    """A node's kickstart (with its token when it is in build mode)."""
    site = app.site()
    node = site.node(name)
    token = _token_or_placeholder(app, node)
    disk_list = [d.strip() for d in disks.split(",") if d.strip()] if disks else None
    text = render_kickstart(
        site,
        node,
        token=token,
        base_url=base_url or site.base_url,
        disks=disk_list,
        images=ImageStore(app.settings.state.images),
    )
    click.echo(text, nl=False)


@render.command()
@click.argument("name")
@click.option("--base-url", default=None, help="Provisioner URL as nodes reach it.")
@pass_app
def preseed(app: App, name: str, base_url: str | None) -> None:
    """A node's Debian/Ubuntu preseed (with its token when it is in build mode)."""
    site = app.site()
    node = site.node(name)
    token = _token_or_placeholder(app, node)
    click.echo(
        render_preseed(site, node, token=token, base_url=base_url or site.base_url),
        nl=False,
    )


COMMANDS = [render]
