"""The default lab's site.yaml: a small HA cloud of qemu nodes on 192.0.2.0/24.

Three controllers, one network, one storage and one compute node; a mix of
legacy BIOS and UEFI; one virtual BMC per node on 127.0.0.1; every node boots
the lab installer (test equipment, see ``installer.py``), which deploys the
profile's Debian image (``image:``; controllers add their HA packages through
the role's ``image_packages``) and the node then boots that system from its own
disks. ``lab_site_data`` is pure; ``write_lab_site`` writes site.yaml and its
secrets (mode 0600), including the lab's SSH key pair (root logs in with it:
``lab ssh``), into the lab's state directory and keeps secrets that already exist.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from provisioner import programs
from provisioner.errors import ProvisionerError, SecretError
from provisioner.inventory.models import BootMode
from provisioner.state.keys import GeneratedKind, create_generated
from provisioner_lab.network import NetworkMode

log = logging.getLogger(__name__)

LAB_DOMAIN = "lab.example.test"
INSTALLER_DIR = "lab-installer"  # under the boot files folder: vmlinuz, initrd.img


NetworkBoot = Literal["ipxe-rom", "firmware-pxe"]


class LabSiteError(ProvisionerError):
    """The lab's site could not be written."""


#: the interface name lab nodes declare for their one NIC (the VIP's VRRP interface in
#: their HA bundles; every HA role needs one)
LAB_NIC = "enp1s0"
#: the lab installer's kernel arguments: serial console; a panic ends the qemu run
LAB_KERNEL_ARGS = "console=ttyS0,115200 panic=-1 no_timer_check"


@dataclass(frozen=True)
class LabNode:
    name: str
    role: str
    boot_mode: BootMode
    disks: int = 1
    #: 1 GiB runs the base Debian image; controllers get 2 GiB (MariaDB, RabbitMQ,
    #: Pacemaker start on first boot: issue 15 measured 2 GiB). Six nodes: 9 GiB.
    memory_mib: int = 1024
    #: "ipxe-rom": qemu's NIC ROM is iPXE, so the chain starts at DHCP -> HTTP;
    #: "firmware-pxe" (UEFI, netns mode): OVMF's own PXE client, DHCP -> TFTP
    #: ipxe.efi -> HTTP, the path a node with a vendor NIC takes
    network_boot: NetworkBoot = "ipxe-rom"


CONTROLLER_MIB = 2048

DEFAULT_NODES: tuple[LabNode, ...] = (
    LabNode("ctl1", "controller", "uefi", disks=2, memory_mib=CONTROLLER_MIB),
    LabNode("ctl2", "controller", "bios", disks=2, memory_mib=CONTROLLER_MIB),
    LabNode(
        "ctl3",
        "controller",
        "uefi",
        disks=2,
        memory_mib=CONTROLLER_MIB,
        network_boot="firmware-pxe",
    ),
    LabNode("net1", "network", "bios"),
    LabNode("sto1", "storage", "uefi", disks=3),
    LabNode("cmp1", "compute", "bios"),
)


@dataclass(frozen=True)
class LabSpec:
    """Everything that shapes the lab's site; defaults give the README's lab."""

    mode: NetworkMode = "netns"
    nodes: tuple[LabNode, ...] = DEFAULT_NODES
    bmc_base_port: int = 6230
    http_port: int = 8080
    tftp_port: int | None = None  # default: 69 in a namespace, 6969 on the loopback
    dns_port: int | None = None  # default: 53 in a namespace, 5353 on the loopback
    disk_gb: int = 32  # the real role layouts need up to ~24 GB on an OS disk; sparse files
    first_host: int = 11  # ctl1 is 192.0.2.11
    #: user mode: node i's sshd is forwarded to 127.0.0.1:ssh_base_port+i (``lab ssh``)
    ssh_base_port: int = 2230
    extra: dict[str, Any] = field(default_factory=dict)
    #: the nodes apply their HA bundles on first boot (``lab up --ha``)
    ha: bool = False

    def effective_tftp_port(self) -> int:
        return self.tftp_port or (69 if self.mode == "netns" else 6969)

    def effective_dns_port(self) -> int:
        return self.dns_port or (53 if self.mode == "netns" else 5353)


def node_mac(index: int) -> str:
    """Locally administered (qemu's 52:54:00) MAC of the lab's node ``index``."""
    return f"52:54:00:00:02:{0x0B + index:02x}"


#: What the controllers' image adds to the base set (``IMAGE_BASE_PACKAGES``): the HA
#: stack the next step configures (site data, not code: the role's ``image_packages``).
CONTROLLER_IMAGE_PACKAGES: tuple[str, ...] = (
    "keepalived",
    "haproxy",
    "mariadb-server",
    "galera-4",
    "rabbitmq-server",
    "memcached",
    "pacemaker",
    "corosync",
)
#: ``lab up --ha`` adds what applying the bundles needs: the one OpenStack API the lab
#: runs (the others' frontends stay without backends): Debian's Keystone, served by
#: Apache's mod_wsgi behind HAProxy on the VIP
HA_IMAGE_PACKAGES: tuple[str, ...] = (
    "keystone",
    "apache2",
    "libapache2-mod-wsgi-py3",
    "python3-pymysql",
    # Galera's rsync state transfer (mariadb-server depends on them; named, as they are used)
    "rsync",
    "lsof",
)

#: The lab's SSH key (root's authorized key on every node), under the state dir.
SSH_KEY = "secrets/lab-ssh-key"


def lab_site_data(spec: LabSpec, ssh_public_key: str | None = None) -> dict[str, Any]:
    """The lab's site.yaml as data (secrets are generated file references under secrets/).

    ``ssh_public_key``: root's authorized key on the installed nodes (``lab ssh``)."""
    provisioner = "192.0.2.2"
    dns_server = "192.0.2.3" if spec.mode == "netns" else "127.0.0.1"
    endpoint: dict[str, Any] = {
        "address": provisioner,
        "http_port": spec.http_port,
        "tftp_port": spec.effective_tftp_port(),
    }
    if spec.mode == "netns":
        endpoint["interface"] = "labbr0"
    nodes = []
    for i, lab_node in enumerate(spec.nodes):
        nodes.append(
            {
                "name": lab_node.name,
                "role": lab_node.role,
                "rack": f"r{i % 2 + 1}",
                "macs": [node_mac(i)],
                "ip": f"192.0.2.{spec.first_host + i}",
                "boot_mode": lab_node.boot_mode,
                "bmc": {
                    "driver": "ipmi",
                    "address": "127.0.0.1",
                    "port": spec.bmc_base_port + i,
                    "user": "admin",
                    "password": secret_ref("bmc-password"),
                },
                "disks": {"count": lab_node.disks, "min_size_gb": spec.disk_gb, "name": "vda"},
                "network": {"interface": LAB_NIC},
            }
        )
    return {
        "site": {"name": "lab", "domain": LAB_DOMAIN},
        "network": {
            "cidr": "192.0.2.0/24",
            "dhcp_pool": {"start": "192.0.2.200", "end": "192.0.2.250"},
            "dns_servers": ["192.0.2.3"],
            "provisioner": endpoint,
            # netns mode: machines added with `lab add-unknown` boot the lab installer in
            # discovery mode (no DHCP of ours in user mode: they could not boot)
            "unknown_macs": "discover" if spec.mode == "netns" else "ignore",
            # user mode: every node reaches serve through slirp, i.e. from 127.0.0.1
            "boot_addresses": "fixed" if spec.mode == "netns" else "dynamic",
        },
        "dns": {
            "server": dns_server,
            "port": spec.effective_dns_port(),
            "forward_zone": LAB_DOMAIN,
            "reverse_zone": "2.0.192.in-addr.arpa",
            "ttl": 60,
            "tsig": {
                "name": "provisioner-key",
                "algorithm": "hmac-sha256",
                "secret": secret_ref("tsig.secret"),
            },
        },
        "defaults": {
            "profile": "lab",
            "boot_mode": "uefi",
            "root_password_hash": secret_ref("root-password.hash"),
            "timezone": "UTC",
            **({"ssh_keys": [ssh_public_key]} if ssh_public_key else {}),
        },
        "profiles": {
            "lab": {
                "os_family": "rhel",
                "kernel": f"{INSTALLER_DIR}/vmlinuz",
                "initrd": f"{INSTALLER_DIR}/initrd.img",
                # Debian bookworm, this machine's apt sources, the base package set.
                # The nodes apply their bundles only with ``lab up --ha`` (in a
                # namespace: in user mode each node is behind its own slirp and
                # reaches no peer, so no cluster can form)
                "image": {"apply_bundle": spec.ha and spec.mode == "netns"},
                "kickstart": "default.ks.j2",
                "kernel_args": LAB_KERNEL_ARGS,
            }
        },
        "roles": {
            "controller": {
                "layout": "controller",
                "image_packages": list(
                    CONTROLLER_IMAGE_PACKAGES + (HA_IMAGE_PACKAGES if spec.ha else ())
                ),
                "ha": {
                    "vips": [
                        {
                            "name": "api",
                            "address": "192.0.2.10",
                            "aliases": ["keystone", "glance", "nova", "placement", "neutron"],
                        }
                    ],
                    "quorum_services": ["galera", "rabbitmq", "pacemaker"],
                },
                # images in Swift on the storage nodes; the small lab has none, so its
                # Glance keeps them per controller (validate warns, as it should)
                "settings": {"glance_store": "swift"}
                if any(n.role == "storage" for n in spec.nodes)
                else {},
            },
            "network": {"layout": "network"},
            "storage": {
                "layout": "storage",
                "settings": {"cinder_backend": "lvm", "cinder_lvm_loss_accepted": True},
            },
            "compute": {"layout": "compute"},
        },
        "nodes": nodes,
        **({"discovery": LAB_DISCOVERY} if spec.mode == "netns" else {}),
        # a joining controller's apply (Galera's state transfer, Keystone under Apache) took
        # 35 min under TCG on a loaded 2-core machine: the default 30 min is for real ones
        **({"pipeline": {"timeouts": {"applied": 5400}}} if spec.ha else {}),
        **spec.extra,
    }


#: Unknown machines (`lab add-unknown`) boot the lab installer in discovery mode
#: (provisioner.discovery= on its command line: installer_files/discover.sh); enrolled
#: ones get addresses from .60 up.
LAB_DISCOVERY: dict[str, Any] = {
    "environment": {
        "kernel": f"{INSTALLER_DIR}/vmlinuz",
        "initrd": f"{INSTALLER_DIR}/initrd.img",
        "kernel_args": LAB_KERNEL_ARGS,
    },
    "addresses": {"start": "192.0.2.60", "end": "192.0.2.99"},
}


#: The lab's secrets: file under the lab's state dir -> what is generated there.
LAB_SECRETS: dict[str, GeneratedKind] = {
    "bmc-password": "password",
    "tsig.secret": "tsig",
    "root-password.hash": "crypt-hash",
}


def secret_ref(name: str) -> dict[str, str]:
    """A reference to one of the lab's secrets, generated on first use (mode 0600)."""
    return {"file": f"secrets/{name}", "generate": LAB_SECRETS[name]}


def write_lab_site(state_dir: Path, spec: LabSpec | None = None) -> Path:
    """Write ``state_dir/site.yaml`` and its secrets; returns the site.yaml path."""
    spec = spec or LabSpec()
    secrets_dir = state_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    for name, kind in LAB_SECRETS.items():  # now, not on first use: every process shares them
        try:
            create_generated(secrets_dir / name, kind)
        except (OSError, SecretError) as exc:
            raise LabSiteError(f"lab site: cannot make the secret {name}: {exc}") from exc
    public_key = make_ssh_key(state_dir / SSH_KEY)
    header = (
        "# The built-in virtual lab (written by provisioner; edits are kept until 'lab up'\n"
        f"# writes it again). Network mode: {spec.mode}. Nodes boot the lab installer,\n"
        "# test equipment that deploys the profile's Debian image as Anaconda would.\n"
    )
    data = lab_site_data(spec, public_key)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    site_path = state_dir / "site.yaml"
    tmp = site_path.with_suffix(".yaml.partial")
    tmp.write_text(header + body)
    tmp.replace(site_path)
    log.info("lab site written to %s (%d nodes, %s mode)", site_path, len(spec.nodes), spec.mode)
    return site_path


def make_ssh_key(path: Path) -> str:
    """The lab's ed25519 key pair at ``path`` (made once, private part 0600); its public line."""
    public = path.with_name(path.name + ".pub")
    if not (path.exists() and public.exists()):
        path.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        argv = [programs.path("ssh-keygen"), "-q", "-t", "ed25519", "-N", "",
                "-C", "provisioner-lab", "-f", str(path)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise LabSiteError(f"lab site: ssh-keygen for {path} failed: {done.stderr.strip()}")
    return public.read_text().strip()
