"""`provisioner lab up|down|status|rebuild|run|add-unknown`: the built-in virtual lab.

The lab lives in its own state dir (default: <state dir>/lab) with its own
site.yaml; `lab run ARGS` runs any provisioner command against it (inside the
lab's network namespace, where its BMCs and DNS server are reachable).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from provisioner import programs
from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, styled_state, table
from provisioner.inventory import load_site
from provisioner.state.store import Store
from provisioner_lab import access, orchestrate, report
from provisioner_lab.bind import render_bind_config
from provisioner_lab.procs import LabRecord

pass_app = click.make_pass_decorator(App)


def _lab_dir(app: App, lab_dir: Path | None) -> Path:
    return lab_dir or app.settings.state.lab


def _lab_dir_option(f: Any) -> Any:
    return click.option(
        "--lab-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="The lab's own state dir [default: <state dir>/lab].",
    )(f)


def _record(root: Path) -> LabRecord:
    record = LabRecord.load(orchestrate.LabPaths(root.resolve()).record)
    if record is None or not record.procs:
        raise orchestrate.LabError(f"the lab in {root} is not up (run 'provisioner lab up')")
    return record


@click.group()
def lab() -> None:
    """The built-in virtual lab: qemu nodes provisioned for real over a lab network."""


@lab.command()
@_lab_dir_option
@click.option("--small", is_flag=True, help="3 controllers + 1 compute instead of 6 nodes.")
@click.option("--namespace", default="provisioner-lab", show_default=True)
@click.option("--user-mode", is_flag=True, help="qemu user-mode networking even as root.")
@click.option(
    "--ha", is_flag=True,
    help="Nodes apply their HA bundles on first boot (Keystone in the controllers' image); "
    "not yet shown converging on the lab.",
)  # fmt: skip
@click.option("--fanout", default=2, show_default=True, help="Nodes installed at once.")
@click.option("--bmc-base-port", default=6230, show_default=True, help="First node's BMC port.")
@click.option("--http-port", default=8080, show_default=True)
@click.option("--dns-port", type=int, help="Lab BIND port [default: 53 netns, 5353 user].")
@click.option("--tftp-port", type=int, help="TFTP port [default: 69 netns, 6969 user].")
@click.option(
    "--ssh-base-port", default=2230, show_default=True,
    help="User mode: first node's SSH port on 127.0.0.1 (lab ssh).",
)  # fmt: skip
@pass_app
def up(
    app: App,
    lab_dir: Path | None,
    small: bool,
    namespace: str,
    user_mode: bool,
    ha: bool,
    fanout: int,
    bmc_base_port: int,
    http_port: int,
    dns_port: int | None,
    tftp_port: int | None,
    ssh_base_port: int,
) -> None:
    """Write the lab site, build the lab installer and the OS images (or reuse them from
    the cache), start network, BIND, serve and BMCs."""
    app.setup_logging()
    root = _lab_dir(app, lab_dir)
    opts = orchestrate.LabOptions(
        root,
        small=small,
        namespace=namespace,
        mode="user" if user_mode else None,
        fanout=fanout,
        ha=ha,
        bmc_base_port=bmc_base_port,
        http_port=http_port,
        dns_port=dns_port,
        tftp_port=tftp_port,
        ssh_base_port=ssh_base_port,
    )
    out = console()
    record = orchestrate.up(opts, say=lambda line: out.print(line, markup=False))
    out.print(f"lab up in {root.resolve()}: {len(record.nodes)} nodes", markup=False)
    out.print(f"network mode: {record.mode} ({record.reason})", markup=False)
    for proc in record.procs:
        out.print(f"  {proc.name}: pid {proc.pid}, log {proc.log}", markup=False)
    out.print("next: provisioner lab rebuild   (or: provisioner lab run nodes)", markup=False)


@lab.command()
@_lab_dir_option
@click.option("--purge", is_flag=True, help="Also delete the nodes' disk files.")
@pass_app
def down(app: App, lab_dir: Path | None, purge: bool) -> None:
    """Stop everything 'lab up' started (by recorded pid) and remove the namespace."""
    app.setup_logging()
    stopped = orchestrate.down(_lab_dir(app, lab_dir), purge=purge)
    message = f"lab down; stopped: {', '.join(stopped)}" if stopped else "no lab running"
    console().print(message, markup=False)


def _os_of(paths: orchestrate.LabPaths, record: LabRecord, node: str) -> str | None:
    """The installed system's PRETTY_NAME over SSH (None: not reachable now)."""
    try:
        done = access.run_ssh(
            paths, record, node, [". /etc/os-release && echo \"$PRETTY_NAME\""],
            timeout=60, connect_timeout=15,  # TCG guests under load answer slowly
        )  # fmt: skip
    except orchestrate.LabError:
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def node_rows(
    paths: orchestrate.LabPaths, record: LabRecord, qemu: dict[str, int]
) -> list[dict[str, Any]]:
    """Per node: state, installed OS (SSH), kernel (booted callback), power cycle to booted."""
    store = Store.open(paths.root)
    try:
        known = {r.name: r.state.value for r in store.all()}
        deployments = {
            n: report.latest_deployment(store.events(n)) if n in known else report.Deployment()
            for n in record.nodes
        }
    finally:
        store.close()
    booted = [n for n in record.nodes if n in qemu and deployments[n].booted is not None]
    with ThreadPoolExecutor(max_workers=8) as pool:
        systems = dict(
            zip(booted, pool.map(lambda n: _os_of(paths, record, n), booted), strict=True)
        )
    return [
        {
            "name": n,
            "state": known.get(n),
            "os": systems.get(n),
            "kernel": deployments[n].kernel,
            "seconds_to_booted": deployments[n].seconds_to_booted,
            "qemu_pid": qemu.get(n),
        }
        for n in record.nodes
    ]


@lab.command()
@_lab_dir_option
@click.option("--json", "as_json", is_flag=True)
@pass_app
def status(app: App, lab_dir: Path | None, as_json: bool) -> None:
    """What runs (network, processes, qemu nodes) and each node's state, installed OS
    (read over SSH), kernel (from its first-boot callback) and power cycle to booted."""
    root = _lab_dir(app, lab_dir)
    st = orchestrate.status(root)
    paths = orchestrate.LabPaths(root.resolve())
    nodes = node_rows(paths, st.record, st.qemu) if paths.site.exists() else []
    data = {
        "mode": st.record.mode,
        "namespace": st.record.namespace if st.record.mode == "netns" else None,
        "namespace_up": st.namespace_up,
        "reason": st.record.reason,
        "processes": {p.name: {"pid": p.pid, "running": st.running[p.name]}
                      for p in st.record.procs},
        "qemu": st.qemu,
        "nodes": st.record.nodes,
        "node_status": nodes,
    }  # fmt: skip
    if as_json:
        print_json(data)
        return
    out = console()
    out.print(f"network mode: {st.record.mode} ({st.record.reason})", markup=False)
    if st.record.mode == "netns":
        up_word = "present" if st.namespace_up else "missing"
        out.print(f"namespace {st.record.namespace}: {up_word}", markup=False)
    rows = [[p.name, str(p.pid), "running" if st.running[p.name] else "stopped"]
            for p in st.record.procs]  # fmt: skip
    out.print(table("lab", ["PROCESS", "PID", "STATE"], rows))
    out.print(
        table(
            "lab nodes",
            ["NODE", "QEMU", "STATE", "INSTALLED OS", "KERNEL", "POWER CYCLE TO BOOTED"],
            [[r["name"], str(r["qemu_pid"]) if r["qemu_pid"] else "off", _state(r["state"]),
              r["os"] or "-", r["kernel"] or "-",
              f"{r['seconds_to_booted']:.0f}s" if r["seconds_to_booted"] is not None else "-"]
             for r in nodes],
        )
    )  # fmt: skip


@lab.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_lab_dir_option
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def ssh(app: App, lab_dir: Path | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on NODE as root over the lab network with the lab's SSH key
    (`provisioner lab ssh ctl1 -- hostname -f`); exits with the command's status."""
    root = _lab_dir(app, lab_dir)
    paths = orchestrate.LabPaths(root.resolve())
    record = _record(root)
    target = access.ssh_target(paths, record, node)
    argv = access.ssh_argv(paths, target, command)
    raise SystemExit(subprocess.run(argv).returncode)


@lab.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_lab_dir_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def run(app: App, lab_dir: Path | None, args: tuple[str, ...]) -> None:
    """Run `provisioner ARGS` against the lab (its site, state dir and namespace)."""
    root = _lab_dir(app, lab_dir)
    argv = orchestrate.lab_command(orchestrate.LabPaths(root.resolve()), _record(root), *args)
    raise SystemExit(subprocess.run(programs.command(argv)).returncode)


@lab.command("add-unknown")
@_lab_dir_option
@click.argument("count", type=click.IntRange(1, 8))
@click.option("--disks", type=click.IntRange(1, 6), default=1, show_default=True)
@click.option("--serial", "serials", multiple=True, help="DMI serial of each machine, in order.")
@click.option("--boot-mode", type=click.Choice(["uefi", "bios"]), default="uefi", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def add_unknown(
    app: App,
    lab_dir: Path | None,
    count: int,
    disks: int,
    serials: tuple[str, ...],
    boot_mode: str,
    as_json: bool,
) -> None:
    """Rack COUNT new machines the site does not know: they boot, discover themselves and
    wait for `provisioner enroll` (see `provisioner lab run discovered`)."""
    from provisioner_lab.unknown import add_unknown as rack

    app.setup_logging()
    machines = rack(_lab_dir(app, lab_dir), count, disks, serials, boot_mode)
    if as_json:
        print_json([m.as_dict() for m in machines])
        return
    rows = [[m.name, m.mac, m.serial, ", ".join(m.disk_serials), m.as_dict()["bmc"]]
            for m in machines]  # fmt: skip
    console().print(table("racked", ["MACHINE", "MAC", "SERIAL", "DISK SERIALS", "BMC"], rows))


def _dig(prefix: list[str], server: str, port: int, *query: str) -> str:
    done = subprocess.run(
        programs.command([*prefix, "dig", f"@{server}", "-p", str(port), "+short", *query]),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip() or "-"


def _state(state: str | None) -> str:
    try:
        return styled_state(state)
    except ValueError:  # "not enrolled", "error": not a NodeState
        return state or "-"


@lab.command()
@_lab_dir_option
@click.argument("nodes", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def rebuild(app: App, lab_dir: Path | None, nodes: tuple[str, ...], as_json: bool) -> None:
    """`provisioner rebuild --all --yes` in the lab (or `provision NODES`: only those, on a
    fresh lab), then a table of them."""
    root = _lab_dir(app, lab_dir)
    paths = orchestrate.LabPaths(root.resolve())
    record = _record(root)
    unknown = sorted(set(nodes) - set(record.nodes))
    if unknown:
        raise orchestrate.LabError(
            f"lab rebuild: no node {', '.join(unknown)} in the lab (nodes: "
            f"{', '.join(record.nodes)})"
        )
    # named nodes: `provision` (a fresh lab's nodes; `lab run reprovision` an installed one)
    command = ["provision", *nodes] if nodes else ["rebuild", "--all", "--yes"]
    argv = orchestrate.lab_command(paths, record, *command, "--json")
    if not as_json:
        console().print(
            f"rebuilding {len(nodes) or len(record.nodes)} lab nodes (qemu under TCG: minutes); "
            f"serial consoles in {paths.root / 'serial'}",
            markup=False,
        )
    started = time.monotonic()
    done = subprocess.run(programs.command(argv), stdout=subprocess.PIPE, text=True)
    try:
        results = {r["name"]: r for r in json.loads(done.stdout)}
    except ValueError:
        sys.stderr.write(done.stdout)
        raise SystemExit(done.returncode or 1) from None
    site = load_site(paths.site)
    server, port = orchestrate.dns_endpoint(site)
    prefix = ["ip", "netns", "exec", record.namespace] if record.mode == "netns" else []
    rows: list[dict[str, Any]] = []
    network_boot = orchestrate.network_boot_of(paths)
    for node in site.nodes:
        if nodes and node.name not in nodes:
            continue
        r = results.get(node.name, {})
        rows.append(
            {
                "name": node.name,
                "role": node.role,
                "ip": str(node.ip),
                "dns_name": _dig(prefix, server, port, "-x", str(node.ip)).rstrip("."),
                "boot_mode": site.boot_mode_of(node),
                "network_boot": network_boot.get(node.name, "-"),
                "state": r.get("state"),
                "seconds": r.get("seconds"),
                "reason": r.get("reason"),
            }
        )
    if as_json:
        print_json(rows)
    else:
        out = console()
        out.print(
            table(
                f"lab rebuild ({record.mode} mode, {time.monotonic() - started:.0f}s in all)",
                ["NODE", "ROLE", "IP", "DNS NAME", "BOOT", "NET BOOT", "STATE", "TIME", "REASON"],
                [[r["name"], r["role"], r["ip"], r["dns_name"], r["boot_mode"], r["network_boot"],
                  _state(r["state"]),
                  f"{r['seconds']:.0f}s" if r["seconds"] is not None else "-",
                  r["reason"] or ""] for r in rows],
            )
        )  # fmt: skip
    if any(r["state"] != "active" for r in rows):
        raise SystemExit(1)


@click.command("lab")
@click.option(
    "--workdir", type=click.Path(path_type=Path), required=True, help="Where config goes."
)
@click.option("--port", type=click.IntRange(1, 65535), default=5300, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--run", is_flag=True, help="Then run named in the foreground (Ctrl-C stops it).")
@pass_app
def dns_lab(app: App, workdir: Path, port: int, address: str, run: bool) -> None:
    """A BIND config serving this site's zones, updatable with its TSIG key."""
    site = app.site()
    config = render_bind_config(site, workdir, port, address)
    out = console()
    out.print(f"wrote {config.conf} (zones {', '.join(config.zones)})", markup=False)
    if (str(site.dns.server), site.dns.port) != (address, port):
        out.print(
            f"note: site.yaml sends updates to {site.dns.server}:{site.dns.port}, "
            f"not {address}:{port}",
            markup=False,
        )
    argv = config.argv(programs.path("named"))
    out.print(" ".join(argv), markup=False)
    if run:
        sys.stdout.flush()
        os.execv(argv[0], argv)
