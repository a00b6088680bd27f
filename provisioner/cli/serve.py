"""`provisioner serve`: the boot server (DHCP, TFTP, HTTP) in the foreground."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import click

from provisioner.bootserver.server import BootServer, ServeOptions, serve_forever, split_bind
from provisioner.bootserver.tftp import DEBIAN_IPXE_DIR
from provisioner.cli.context import App
from provisioner.daemon.service import HEARTBEAT_INTERVAL, SILENT_BEATS, DaemonService, Membership
from provisioner.dhcp.hosts import DEFAULT_EFI_BINARY
from provisioner.errors import ServeError
from provisioner.inventory.models import Site
from provisioner.state.privacy import PRIVATE_UMASK, make_private

pass_app = click.make_pass_decorator(App)


@click.command()
@click.option(
    "--http-bind",
    metavar="ADDR:PORT",
    help="HTTP listen address [default: the site's provisioner address and http_port].",
)
@click.option(
    "--tftp-bind",
    metavar="ADDR:PORT",
    help="TFTP listen address [default: the site's provisioner address and tftp_port].",
)
@click.option(
    "--tftp-root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Your own folder of iPXE binaries to serve over TFTP "
    f"[default: copies of Debian's, from {DEBIAN_IPXE_DIR}].",
)
@click.option(
    "--boot-files",
    type=click.Path(path_type=Path, file_okay=False),
    help="Kernels and initrds served under /files/ [default: <state dir>/boot-files].",
)
@click.option("--no-dhcp", is_flag=True, help="Do not run dnsmasq (DHCP is someone else's).")
@click.option("--no-tftp", is_flag=True, help="Do not run the TFTP server.")
@click.option(
    "--efi-binary",
    type=click.Choice(["ipxe.efi", "snponly.efi"]),
    default=DEFAULT_EFI_BINARY,
    show_default=True,
    help="iPXE binary for x86-64 UEFI clients.",
)
@click.option("--workers", default=4, show_default=True, help="HTTP worker processes.")
@click.option("--threads", default=32, show_default=True, help="Threads per HTTP worker.")
@click.option(
    "--api-bind",
    metavar="ADDR:PORT",
    help="Admin REST API of the pipeline daemon [default: 127.0.0.1:<http_port + 1>].",
)
@click.option("--no-api", is_flag=True, help="Do not host the pipeline daemon and its API.")
@click.option(
    "--ui-bind",
    metavar="ADDR:PORT",
    help="The web dashboard (log in with the admin token) "
    "[default: 127.0.0.1:<http_port + 2>; give an address to expose it].",
)
@click.option("--no-ui", is_flag=True, help="Do not serve the web dashboard.")
@click.option(
    "--networks",
    metavar="NAME[,NAME]",
    help="One of several boot servers on a shared database: answer only these provisioning "
    "networks ('main' is network:), register, heartbeat and take over the nodes of a "
    "partner on the same networks that stops [default: one server for every network].",
)
@click.option(
    "--server-name",
    metavar="NAME",
    help="With --networks: this instance's name, unique among the running ones "
    "[default: <host>-<first network>].",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.1, max=60),
    default=HEARTBEAT_INTERVAL,
    show_default=True,
    help="With --networks: seconds between heartbeats and takeover scans; a partner "
    f"silent for {SILENT_BEATS} heartbeats is dead and its nodes are taken over.",
)
@pass_app
def serve(
    app: App,
    http_bind: str | None,
    tftp_bind: str | None,
    tftp_root: Path | None,
    boot_files: Path | None,
    no_dhcp: bool,
    no_tftp: bool,
    efi_binary: str,
    workers: int,
    threads: int,
    api_bind: str | None,
    no_api: bool,
    ui_bind: str | None,
    no_ui: bool,
    networks: str | None,
    server_name: str | None,
    heartbeat: float,
) -> None:
    """Run DHCP (dnsmasq), TFTP (iPXE binaries) and HTTP (boot scripts, kernels)
    in the foreground until SIGTERM. Follows edits of site.yaml."""
    app.verbose = max(app.verbose, 1)  # a server logs its requests
    # private before anything is logged or opened, even if created 0755 earlier
    os.umask(PRIVATE_UMASK)
    make_private(app.settings.state)
    app.setup_logging()
    site = app.site()  # fail early, with the site's problems listed
    served = _networks(site, networks)
    if server_name is not None and served is None:
        raise ServeError("--server-name: only with --networks (one of several boot servers)")
    member = None
    if served is not None:
        name = server_name or f"{socket.gethostname()}-{served[0]}"
        member = Membership(name, served, heartbeat, timedelta(seconds=heartbeat * SILENT_BEATS))
    opts = ServeOptions(
        site_path=app.settings.site_path,
        state_dir=app.settings.state_dir,
        db_url=app.settings.db_url,
        boot_files_dir=boot_files,
        tftp_root=tftp_root,
        http_bind=http_bind,
        tftp_bind=tftp_bind,
        dhcp=not no_dhcp,
        tftp=not no_tftp,
        workers=workers,
        threads=threads,
        efi_binary=efi_binary,
        log_level="DEBUG" if app.verbose > 1 else "INFO",
        log_file=app.settings.log_path,  # the HTTP process logs there too
        networks=served,
    )
    ui = None if no_ui else (ui_bind or "")
    serve_forever(
        opts,
        None if no_api else lambda server: [_daemon(server, app, api_bind, ui, member)],
        site=site,
    )


def _networks(site: Site, given: str | None) -> tuple[str, ...] | None:
    if given is None:
        return None
    known = site.provisioning_networks()
    names = tuple(dict.fromkeys(n.strip() for n in given.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ServeError(
            f"--networks: {', '.join(unknown) or 'none given'}: not a provisioning network "
            f"of the site (one of: {', '.join(known)})"
        )
    return names


def _daemon(
    server: BootServer,
    app: App,
    api_bind: str | None,
    ui_bind: str | None,
    member: Membership | None,
) -> DaemonService:
    """The pipeline daemon, its admin API and its dashboard, on loopback beside the
    HTTP port by default (``ui_bind`` None: no dashboard; "": the default address)."""
    prov = server.endpoint()
    host, port = split_bind(api_bind or f"127.0.0.1:{prov.http_port + 1}", "--api-bind")
    ui = None
    if ui_bind is not None:
        ui = split_bind(ui_bind or f"127.0.0.1:{prov.http_port + 2}", "--ui-bind")
    return DaemonService(
        server.sites,
        app.settings.state_dir,
        app.settings.db_url,
        host,
        port,
        ui,
        ui_required=bool(ui_bind),  # the default port may be taken: serve goes on without
        member=member,
    )


COMMANDS = [serve]
