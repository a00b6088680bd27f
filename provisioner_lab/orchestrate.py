"""`provisioner lab up|down|status`: the built-in virtual lab, started and stopped.

``up`` writes the lab site, builds the lab installer into the boot files
folder, builds (or finds cached) the OS images the nodes' profile and roles
install (mmdebstrap, cached outside the lab by a digest of their inputs and
linked in as the state dir's ``images/``, which serve publishes), makes one
sparse disk image per node disk, brings up the lab network (a namespace when
root, qemu user-mode otherwise), then starts, each detached and recorded by
pid in ``lab.json``: BIND for the lab zones, ``provisioner serve`` and the
virtual BMCs driving the qemu nodes. In namespace mode all three run inside
the namespace (the BMCs' 127.0.0.1 is the namespace's own, so the pipeline
commands run there too: ``lab_command``). ``down`` stops what the record names
and removes the namespace.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from provisioner import programs
from provisioner.errors import ProvisionerError
from provisioner.install.images import ImageStore, image_name, image_targets, plan_image
from provisioner.inventory import Site, load_site
from provisioner.settings import StateDir
from provisioner_lab import preflight, procs
from provisioner_lab.bind import render_bind_config
from provisioner_lab.installer import DEFAULT_CACHE_DIR, build_lab_installer
from provisioner_lab.network import (
    LabNetwork,
    LabNetworkPlan,
    NetworkMode,
    detect_mode,
    plan_network,
    qemu_netdev,
)
from provisioner_lab.site import (
    CONTROLLER_MIB,
    INSTALLER_DIR,
    SSH_KEY,
    LabNode,
    LabSpec,
    node_mac,
    secret_ref,
    write_lab_site,
)

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # so `python -m provisioner` finds us
GB = 1024**3

# Three controllers even when small: with two, the quorum guard (rightly) refuses to
# reprovision either of them, as a two-member Galera/RabbitMQ cluster cannot lose one.
SMALL_NODES: tuple[LabNode, ...] = (
    LabNode("ctl1", "controller", "uefi", disks=2, memory_mib=CONTROLLER_MIB),
    LabNode("ctl2", "controller", "bios", disks=2, memory_mib=CONTROLLER_MIB),
    LabNode("ctl3", "controller", "bios", disks=2, memory_mib=CONTROLLER_MIB),
    LabNode("cmp1", "compute", "uefi", network_boot="firmware-pxe"),
)


class LabError(ProvisionerError):
    """The lab could not be brought up, or is not up."""


@dataclass(frozen=True)
class LabOptions:
    state_dir: Path
    small: bool = False
    namespace: str = "provisioner-lab"
    mode: NetworkMode | None = None  # None: netns when root networking works
    fanout: int = 2  # TCG on 2 cores: two installs at once keep both cores busy
    cache_dir: Path | None = None
    bmc_base_port: int = 6230
    http_port: int = 8080
    dns_port: int | None = None  # default: 53 in a namespace, 5353 on the loopback
    tftp_port: int | None = None  # default: 69 in a namespace, 6969 on the loopback
    ssh_base_port: int = 2230  # user mode: node i's sshd on 127.0.0.1:ssh_base_port+i
    ha: bool = False  # the nodes apply their HA bundles on first boot


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def state(self) -> StateDir:
        """The lab's serve runs with the lab folder as its state dir."""
        return StateDir(self.root)

    @property
    def site(self) -> Path:
        return self.root / "site.yaml"

    @property
    def record(self) -> Path:
        return self.root / "lab.json"

    @property
    def vbmc_config(self) -> Path:
        return self.root / "vbmc.yaml"

    def disk(self, node: str, index: int) -> Path:
        return self.root / "disks" / f"{node}-vd{chr(ord('a') + index)}.raw"

    def serial_log(self, node: str) -> Path:
        return self.state.serial_log(node)

    def nvram(self, node: str) -> Path:
        """A UEFI node's variable store (boot options), made from OVMF's template."""
        return self.state.vbmc / f"{node}.OVMF_VARS.fd"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"


def lab_spec(opts: LabOptions, mode: NetworkMode) -> LabSpec:
    nodes = SMALL_NODES if opts.small else LabSpec().nodes
    return LabSpec(
        mode=mode,
        nodes=nodes,
        bmc_base_port=opts.bmc_base_port,
        http_port=opts.http_port,
        dns_port=opts.dns_port,
        tftp_port=opts.tftp_port,
        ssh_base_port=opts.ssh_base_port,
        extra={"pipeline": {"fanout": opts.fanout}},
        ha=opts.ha,
    )


def vbmc_config(paths: LabPaths, spec: LabSpec, plan: LabNetworkPlan) -> dict[str, Any]:
    """The virtual BMCs' config: one qemu node per lab node (pure)."""
    bmcs: list[dict[str, Any]] = []
    for i, node in enumerate(spec.nodes):
        ip = f"192.0.2.{spec.first_host + i}"
        nic: dict[str, Any] = {"mac": node_mac(i)}
        if plan.mode == "netns":
            nic["tap"] = plan.tap(node.name)
            nic["firmware_pxe"] = node.network_boot == "firmware-pxe"
        else:
            netdev = qemu_netdev(plan, node.name, ip, spec.effective_tftp_port())
            # qemu's NIC ROM is iPXE already (BIOS and UEFI): point it at the node's
            # boot script over HTTP, so UEFI nodes need no UEFI binary over slirp's TFTP
            # (user mode keeps the iPXE ROM even for "firmware-pxe" nodes)
            script = f"http://{plan.addresses[0].ip}:{spec.http_port}/boot/"
            script += node_mac(i).replace(":", "-") + ".ipxe"
            options = netdev.split(",", 2)[2].split(",bootfile=")[0]  # drop "user,id=..."
            # the installed system's sshd, for `lab ssh` (no route into slirp otherwise)
            ssh = f"hostfwd=tcp:127.0.0.1:{spec.ssh_base_port + i}-:22"
            nic["user"] = f"{options},{ssh},bootfile={script}"
        bmcs.append(
            {
                "name": node.name,
                "port": spec.bmc_base_port + i,
                "qemu": {
                    "name": node.name,
                    "boot_mode": node.boot_mode,
                    "memory_mb": node.memory_mib,
                    "nics": [nic],
                    "disks": [
                        {"path": str(paths.disk(node.name, d)), "format": "raw"}
                        for d in range(node.disks)
                    ],
                    "serial_log": str(paths.serial_log(node.name)),
                    "extra_args": ["-device", "virtio-rng-pci"],
                },
            }
        )
        if node.boot_mode == "uefi":
            bmcs[-1]["qemu"]["ovmf_vars"] = str(paths.nvram(node.name))
    return {
        "defaults": {
            "address": "127.0.0.1",
            "user": "admin",
            "password": secret_ref("bmc-password"),  # the file the lab site names
            "state_dir": str(paths.state.vbmc),
        },
        "bmcs": bmcs,
    }


def network_boot_of(paths: LabPaths) -> dict[str, str]:
    """How each node starts its network boot, read back from the BMCs' config."""
    config = yaml.safe_load(paths.vbmc_config.read_text())
    return {
        bmc["name"]: "PXE+TFTP"
        if any(nic.get("firmware_pxe") for nic in bmc["qemu"]["nics"])
        else "iPXE ROM"
        for bmc in config["bmcs"]
    }


def make_disks(paths: LabPaths, spec: LabSpec) -> None:
    """Sparse raw images, ``spec.disk_gb`` each; existing ones are kept."""
    for node in spec.nodes:
        for d in range(node.disks):
            path = paths.disk(node.name, d)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                with path.open("wb") as fh:
                    fh.truncate(spec.disk_gb * GB)


def _python(paths: LabPaths, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "provisioner",
        "--site", str(paths.site), "--state-dir", str(paths.root), *args,
    ]  # fmt: skip


def _env_argv(argv: list[str]) -> list[str]:
    """Keep this source tree importable inside ``ip netns exec`` (which keeps the env)."""
    return ["env", f"PYTHONPATH={PACKAGE_ROOT}", *argv]


def lab_command(paths: LabPaths, record: procs.LabRecord, *args: str) -> list[str]:
    """argv of a ``provisioner`` command run against the lab (inside its namespace).

    Commands that log into the nodes (``ha status``) use the lab's SSH key; host keys are
    not pinned (every reinstall makes new ones; lab equipment, as `lab ssh`)."""
    prefix = ["ip", "netns", "exec", record.namespace] if record.mode == "netns" else []
    ssh = [
        f"PROVISIONER_SSH_IDENTITY={paths.root / SSH_KEY}",
        "PROVISIONER_SSH_KNOWN_HOSTS=/dev/null",
    ]
    env, *rest = _env_argv(_python(paths, *args))
    return [*prefix, env, *ssh, *rest]


def dns_endpoint(site: Site) -> tuple[str, int]:
    return str(site.dns.server), site.dns.port


def _dig_ok(prefix: list[str], server: str, port: int, zone: str) -> bool:
    done = subprocess.run(
        programs.command([*prefix, "dig", f"@{server}", "-p", str(port), "+short", "+time=1",
                          "+tries=1", zone, "SOA"]),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.returncode == 0 and bool(done.stdout.strip())


def default_cache_dir() -> Path:
    """Where the lab installer and the OS images are cached: outside any checkout or lab,
    so `make demo`, the tests and a fresh clone share them."""
    if os.access(DEFAULT_CACHE_DIR.parent, os.W_OK):
        return DEFAULT_CACHE_DIR
    return Path.home() / ".cache" / "provisioner-lab"


def build_images(site: Site, cache: Path, say: Callable[[str], None]) -> list[str]:
    """Every image the lab's nodes install, built unless cached; what was done, per image."""
    store = ImageStore(cache)
    done = []
    for profile, role in image_targets(site, None, None):
        name = image_name(profile, role)
        plan = plan_image(site, profile, role)
        cached = store.get(plan.key)
        if cached is None:
            say(f"image {name}: building with mmdebstrap ({len(plan.packages)} packages; "
                f"a few minutes the first time) into {cache}")  # fmt: skip
        image, built = store.build(plan, name, quiet=True)
        how = f"built in {image.seconds:.0f} s" if built else "cached"
        done.append(f"image {name}: {how} ({image.key}, {image.size // 2**20} MiB)")
        say(done[-1])
    return done


def link_images(paths: LabPaths, cache: Path) -> None:
    """The lab's ``images/`` (what serve publishes) is the shared cache, linked in."""
    link = paths.state.images
    if link.is_symlink() or not link.exists():
        link.unlink(missing_ok=True)
        link.symlink_to(cache, target_is_directory=True)


def up(opts: LabOptions, say: Callable[[str], None] = log.info) -> procs.LabRecord:
    paths = LabPaths(opts.state_dir.resolve())
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = procs.LabRecord.load(paths.record)
    if existing and any(procs.alive(p) for p in existing.procs):
        raise LabError(f"lab in {paths.root} is already up (run 'provisioner lab down' first)")
    mode, why = (opts.mode, "chosen") if opts.mode else detect_mode(f"{opts.namespace}-probe")
    preflight.check()  # before anything is written or started
    spec = lab_spec(opts, mode)
    log.info("lab: %s mode (%s), %d nodes", mode, why, len(spec.nodes))
    write_lab_site(paths.root, spec)
    site = load_site(paths.site)
    cache = opts.cache_dir or default_cache_dir()
    build_lab_installer(paths.state.boot_files / INSTALLER_DIR, cache)
    build_images(site, cache / "images", say)
    link_images(paths, cache / "images")
    make_disks(paths, spec)
    plan = plan_network([n.name for n in spec.nodes], mode, namespace=opts.namespace)
    LabNetwork(plan).up()
    record = procs.LabRecord(mode, opts.namespace, f"{why}; {plan.describe()}",
                             [n.name for n in spec.nodes])  # fmt: skip
    record.save(paths.record)
    prefix = plan.exec_prefix()
    try:
        _start_bind(paths, site, record, prefix)
        _start_serve(paths, record, mode, spec)
        _start_vbmc(paths, record, spec, plan)
    except BaseException:
        down(opts.state_dir)
        raise
    return record


def _start_bind(paths: LabPaths, site: Site, record: procs.LabRecord, prefix: list[str]) -> None:
    server, port = dns_endpoint(site)
    config = render_bind_config(site, paths.root / "bind", port, address=server)
    named = [*prefix, "named", "-g", "-c", str(config.conf), "-n", "1"]
    rec = procs.start_detached("bind", named, paths.log("bind"), str(config.conf))
    record.procs.append(rec)
    record.save(paths.record)
    zone = config.zones[0]
    procs.wait_for(rec, lambda: _dig_ok(prefix, server, port, zone), 60, "answer for " + zone)


def _start_serve(
    paths: LabPaths, record: procs.LabRecord, mode: NetworkMode, spec: LabSpec
) -> None:
    args = ["serve", "--workers", "1", "--threads", "16"]
    if mode == "user":  # slirp maps the lab's provisioner address to the host's loopback
        args += [
            "--no-dhcp",
            "--http-bind", f"127.0.0.1:{spec.http_port}",
            "--tftp-bind", f"127.0.0.1:{spec.effective_tftp_port()}",
        ]  # fmt: skip
    argv = lab_command(paths, record, *args)
    rec = procs.start_detached("serve", argv, paths.log("serve"), f"{paths.root} serve")
    record.procs.append(rec)
    record.save(paths.record)
    procs.wait_for(rec, lambda: procs.log_has(rec.log, "http: serving on"), 120, "HTTP")


def _start_vbmc(
    paths: LabPaths, record: procs.LabRecord, spec: LabSpec, plan: LabNetworkPlan
) -> None:
    config = vbmc_config(paths, spec, plan)
    _forget_nvram_of_changed_nodes(paths, config)
    paths.vbmc_config.write_text(yaml.safe_dump(config, sort_keys=False))
    paths.serial_log(spec.nodes[0].name).parent.mkdir(parents=True, exist_ok=True)
    argv = lab_command(paths, record, "vbmc", "serve", "--config", str(paths.vbmc_config))
    rec = procs.start_detached("vbmc", argv, paths.log("vbmc"), str(paths.vbmc_config))
    record.procs.append(rec)
    record.save(paths.record)
    procs.wait_for(rec, lambda: procs.log_has(rec.log, "virtual BMC(s) on"), 120, "BMCs")


def _forget_nvram_of_changed_nodes(paths: LabPaths, config: dict[str, Any]) -> None:
    """A node whose virtual hardware changed since the last `lab up` starts with
    a fresh UEFI variable store, as a re-racked machine would. OVMF keeps the old
    hardware's boot options first: a node that lost its iPXE ROM then tried PXE
    over IPv6 and HTTP boot (minutes of timeouts) before PXE over IPv4."""
    if not paths.vbmc_config.exists():
        return
    before = yaml.safe_load(paths.vbmc_config.read_text()) or {}
    old = {b["name"]: b.get("qemu") for b in before.get("bmcs", [])}
    for bmc in config["bmcs"]:
        nvram = paths.nvram(bmc["name"])
        if old.get(bmc["name"]) != bmc["qemu"] and nvram.exists():
            log.info("lab: %s: virtual hardware changed, fresh UEFI variable store", bmc["name"])
            nvram.unlink()


def qemu_pids(paths: LabPaths) -> dict[str, int]:
    """Running qemu processes of the lab's nodes (from the BMC state, checked by cmdline)."""
    out = {}
    for state in sorted((paths.state.vbmc).glob("*.json")):
        try:
            pid = yaml.safe_load(state.read_text()).get("qemu_pid")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        qmp = str(paths.state.vbmc / f"{state.stem}.qmp")
        if pid and qmp in procs.cmdline(int(pid)):
            out[state.stem] = int(pid)
    return out


def down(state_dir: Path, purge: bool = False) -> list[str]:
    """Stop what ``up`` recorded (reverse order), stray qemu nodes, then the namespace.

    Returns what it stopped; nothing when no lab was ever brought up here, which
    is not an error: ``make demo`` runs ``lab down`` first on every run. With
    ``purge`` the nodes' disk files go too (gigabytes per node once images are
    installed); the state, logs and serial consoles stay for reading."""
    paths = LabPaths(state_dir.resolve())
    record = procs.LabRecord.load(paths.record)
    if record is None:
        return []
    stopped = [p.name for p in reversed(record.procs) if procs.stop(p)]
    for node, pid in qemu_pids(paths).items():
        stray = procs.ProcRecord(f"qemu {node}", pid, str(paths.state.vbmc), "")
        if procs.stop(stray, timeout=10):
            stopped.append(stray.name)
    if record.mode == "netns":
        plan = plan_network(record.nodes, "netns", namespace=record.namespace)
        if LabNetwork(plan).down():
            stopped.append(f"namespace {record.namespace}")
    record.procs = []
    record.save(paths.record)
    if purge:
        disks = sorted((paths.root / "disks").glob("*.raw"))
        for disk in disks:
            disk.unlink(missing_ok=True)
        if disks:
            stopped.append(f"{len(disks)} disk files removed")
    return stopped


@dataclass(frozen=True)
class LabStatus:
    record: procs.LabRecord
    running: dict[str, bool]
    qemu: dict[str, int]
    namespace_up: bool


def status(state_dir: Path) -> LabStatus:
    paths = LabPaths(state_dir.resolve())
    record = procs.LabRecord.load(paths.record)
    if record is None:
        raise LabError(f"no lab recorded in {paths.root} (run 'provisioner lab up')")
    running = {p.name: procs.alive(p) for p in record.procs}
    ns_up = True
    if record.mode == "netns":
        plan = plan_network(record.nodes, "netns", namespace=record.namespace)
        ns_up = LabNetwork(plan).observe().namespace
    return LabStatus(replace(record), running, qemu_pids(paths), ns_up)
