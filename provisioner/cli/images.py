"""`provisioner image build|list`: the OS images of image profiles (install/images.py)."""

from __future__ import annotations

from dataclasses import asdict

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, table
from provisioner.install.images import ImageStore, image_name, image_targets, plan_image

pass_app = click.make_pass_decorator(App)


@click.group()
def image() -> None:
    """OS images that image profiles install (liveimg)."""


@image.command()
@click.option("--profile", default=None, help="Only this profile (default: every image profile).")
@click.option("--role", default=None, help="Only for this role (default: the roles of its nodes).")
@click.option("--force", is_flag=True, help="Rebuild even when a cached image has these inputs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable records.")
@pass_app
def build(app: App, profile: str | None, role: str | None, force: bool, as_json: bool) -> None:
    """Build the images nodes need with mmdebstrap (cached by a digest of their inputs)."""
    app.setup_logging()
    site = app.site()
    store = ImageStore(app.settings.state.images)
    out = console()
    done = []
    for p, r in image_targets(site, profile, role):
        plan = plan_image(site, p, r)
        name = image_name(p, r)
        if not as_json:
            out.print(f"image {name} ({plan.key}): {'building' if force else 'checking'}...")
        built, fresh = store.build(plan, name, force=force, quiet=True)
        done.append(asdict(built) | {"fresh": fresh, "file": str(store.file(built))})
        if not as_json:
            how = f"built in {built.seconds:.0f} s" if fresh else "cached"
            out.print(
                f"image {name}: {how}, {built.size / 1e6:.0f} MB, sha256 {built.sha256}",
                markup=False,
            )
    if as_json:
        print_json(done)


@image.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable records.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """The built images: key, who uses them, size, sha256."""
    images = ImageStore(app.settings.state.images).list()
    if as_json:
        print_json([asdict(i) for i in images])
        return
    rows = [
        [
            i.key,
            ", ".join(i.names),
            i.suite,
            str(len(i.packages)),
            f"{i.size / 1e6:.0f} MB",
            i.built_at,
            i.sha256[:16],
        ]
        for i in images
    ]
    cols = ["KEY", "USED BY", "SUITE", "PACKAGES", "SIZE", "BUILT", "SHA256"]
    console().print(table(None, cols, rows))


COMMANDS = [image]
