"""The grammar of ``roles.<role>.settings``: one typed model per role kind.

A role's settings shape the HA bundle of its nodes (provisioner/roles/). They are
checked when the site is loaded (``provisioner validate`` names the role and the field
of an unknown or malformed setting), not first when a node's bundle is generated
minutes into a deployment. Extra keys are refused: a misspelt setting would otherwise
be ignored and its default used without a word.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from provisioner.errors import RoleConfigError
from provisioner.inventory.secrets import SecretRef

InterfaceName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,15}$")]
AbsPath = Annotated[str, StringConstraints(strict=True, pattern=r"^/[\w./-]+$")]
#: an absolute program path with plain arguments (no shell syntax: keepalived runs it)
Command = Annotated[str, StringConstraints(strict=True, pattern=r"^/[\w./-]+( [\w./=-]+)*$")]
#: an absolute path in which ``{node}`` stands for the fenced controller's name
FenceScript = Annotated[str, StringConstraints(strict=True, pattern=r"^/[\w./{}-]+$")]
UnitName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9@._-]+$")]
CephName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.-]{1,63}$")]
BridgeMappings = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[\w.-]+:[\w.-]+(,[\w.-]+:[\w.-]+)*$"),
    Field(description="physnet:bridge pairs, comma separated (Open vSwitch agent)"),
]
Count = Annotated[int, Field(strict=True, ge=1)]

DEFAULT_VRRP_SECRET = SecretRef(file="secrets/neutron-l3-ha-vrrp-password", generate="password")
DEFAULT_CLUSTER_SECRET = SecretRef(file="secrets/controller-cluster-secret", generate="password")


class RoleSettings(BaseModel):
    """What every role kind's settings share: strict, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ControllerSettings(RoleSettings):
    vrrp_interface: InterfaceName | None = Field(
        None, description="The VIP's interface for every controller (default: each node's own)"
    )
    vrrp_check_script: Command = "/usr/bin/pgrep -x haproxy"
    corosync_keyfile: AbsPath = "/etc/corosync/authkey"
    fence_password_script: FenceScript = Field(
        "/etc/provisioner/fence/{node}.password",
        description="Prints a controller's BMC password; {node} is the fenced controller",
    )
    pacemaker_services: list[UnitName] = Field(
        default_factory=list,
        description="systemd units without native HA that Pacemaker runs on one controller "
        "(none by default: cinder-backup runs on every storage node, beside cinder-volume)",
    )
    memcached_memory_mb: Annotated[int, Field(strict=True, ge=64)] = 1024
    galera_new_cluster: bool = Field(
        False, description="Full rebuild: the first controller bootstraps a new Galera cluster"
    )
    rabbitmq_default_queue_type: Literal["", "quorum", "classic", "stream"] = ""
    cluster_secret: SecretRef = Field(
        DEFAULT_CLUSTER_SECRET,
        description="Seed of the controllers' shared keys (Erlang cookie, Corosync authkey): "
        "a secret reference, generated once by default",
    )
    glance_store: Literal["swift", "rbd", "file"] | None = Field(
        None,
        description="Where Glance keeps images: swift or rbd (replicated), or file on "
        "glance_shared_path (a filesystem every controller mounts); unset: each controller's "
        "local disk (validate warns)",
    )
    glance_shared_path: AbsPath | None = Field(
        None, description="The shared filesystem of glance_store: file (NFS, CephFS...)"
    )
    glance_rbd_pool: CephName = "images"
    glance_rbd_user: CephName = "glance"
    octavia: bool = Field(False, description="Octavia API, worker and housekeeping here")


class NetworkSettings(RoleSettings):
    max_l3_agents_per_router: Count | None = Field(None, description="Default min(3, nodes)")
    dhcp_agents_per_network: Count | None = Field(None, description="Default min(3, nodes)")
    l3_ha_net_cidr: IPv4Network = IPv4Network("169.254.192.0/18")
    ha_vrrp_auth_password: SecretRef = Field(
        DEFAULT_VRRP_SECRET, description="The HA routers' VRRP password (a secret reference)"
    )
    bridge_mappings: BridgeMappings = "physnet1:br-ex"
    vpnaas: bool = Field(True, description="VPN as a service (neutron-vpnaas) L3 extension")
    fwaas: bool = Field(True, description="Firewall as a service (neutron-fwaas v2) extension")
    octavia_health_manager: bool = Field(False, description="Octavia's health manager here")


DiskUse = Literal["cinder-lvm", "ceph-osd", "swift"]
#: the order in which a node's data disks are handed out (in the installer's and the
#: node's name order): Cinder's volume group first, then Ceph OSDs, then Swift
DISK_USES: tuple[DiskUse, ...] = ("cinder-lvm", "ceph-osd", "swift")
DiskCount = Annotated[int, Field(strict=True, ge=0)] | Literal["rest"]


class DiskPlan(RoleSettings):
    """Which data disk goes where: a count per use, one of them may be ``rest``.

    The one source for the kickstart layout (the ``cinder-lvm`` disks become the volume
    group at install, provisioner/install/partitioning.py) and the node's
    ``prepare-disks.sh`` (the others: left for Ceph OSDs, formatted for Swift)."""

    cinder_lvm: DiskCount = Field(0, alias="cinder-lvm")
    ceph_osd: DiskCount = Field(0, alias="ceph-osd")
    swift: DiskCount = 0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_rest(self) -> DiskPlan:
        if list(self.counts().values()).count("rest") > 1:
            raise ValueError("only one use can take the rest of the disks")
        return self

    def counts(self) -> dict[DiskUse, int | Literal["rest"]]:
        return {"cinder-lvm": self.cinder_lvm, "ceph-osd": self.ceph_osd, "swift": self.swift}

    @property
    def fixed(self) -> int:
        """Disks the plan needs at least."""
        return sum(n for n in self.counts().values() if n != "rest")

    def assign(self, data_disks: int) -> tuple[DiskUse, ...] | None:
        """The use of each of ``data_disks`` disks in order, or None when they are too few.
        Without a ``rest`` use, disks beyond the plan stay unused."""
        if data_disks < self.fixed:
            return None
        rest = data_disks - self.fixed
        uses: list[DiskUse] = []
        for use, n in self.counts().items():
            uses += [use] * (rest if n == "rest" else n)
        return tuple(uses)

    def describe(self) -> str:
        return ", ".join(f"{use}: {n}" for use, n in self.counts().items() if n)


class StorageSettings(RoleSettings):
    cinder_backend: Literal["lvm", "rbd"] = "lvm"
    cinder_lvm_loss_accepted: bool = Field(
        False,
        description="The operator knows LVM volumes live on one node (unreachable while it is "
        "down, lost with its disks): validate stops warning",
    )
    volume_group: CephName = "cinder-volumes"
    rbd_pool: CephName = "volumes"
    rbd_user: CephName = "cinder"
    ceph_cluster: CephName = Field("ceph", description="The Ceph cluster's name (its conf file)")
    ceph_monitors: list[IPv4Address] = Field(
        default_factory=list, description="The Ceph monitors the RBD clients reach"
    )
    disk_plan: DiskPlan | None = Field(
        None,
        description="Data disks per use (cinder-lvm, ceph-osd, swift; one may be 'rest'); "
        "default: lvm -> {cinder-lvm: 1, swift: rest}, rbd -> {ceph-osd: rest, swift: 1}",
    )
    swift_replicas: Annotated[int, Field(strict=True, ge=1, le=6)] | None = Field(
        None, description="Copies of each object; default 3, or fewer when Swift has fewer disks"
    )
    swift_part_power: Annotated[int, Field(strict=True, ge=4, le=22)] = 10

    @property
    def plan(self) -> DiskPlan:
        if self.disk_plan is not None:
            return self.disk_plan
        if self.cinder_backend == "lvm":
            return DiskPlan(cinder_lvm=1, swift="rest")
        return DiskPlan(ceph_osd="rest", swift=1)

    @model_validator(mode="after")
    def _plan_fits_backend(self) -> StorageSettings:
        lvm = self.plan.cinder_lvm
        if self.cinder_backend == "lvm" and lvm == 0:
            raise ValueError("disk_plan gives no disk to cinder-lvm, but cinder_backend is lvm")
        if self.cinder_backend == "rbd" and lvm != 0:
            raise ValueError("disk_plan gives disks to cinder-lvm, but cinder_backend is rbd")
        if self.cinder_backend == "rbd" and not self.ceph_monitors:
            raise ValueError("cinder_backend rbd needs ceph_monitors (the Ceph client's monitors)")
        return self


class ComputeSettings(RoleSettings):
    bridge_mappings: BridgeMappings = "physnet1:br-ex"


SETTINGS_MODELS: dict[str, type[RoleSettings]] = {
    "controller": ControllerSettings,
    "network": NetworkSettings,
    "storage": StorageSettings,
    "compute": ComputeSettings,
}


def parse_settings(kind: str, raw: dict[str, Any]) -> RoleSettings:
    """``raw`` as the kind's model; raises pydantic's ValidationError (the loader turns it
    into problems with the field and its line)."""
    return SETTINGS_MODELS[kind].model_validate(raw)


def settings_error(role: str, exc: ValidationError) -> RoleConfigError:
    """The first problem of ``exc`` as an error naming the role and the field."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    what = "unknown setting (misspelt?)" if err["type"] == "extra_forbidden" else err["msg"]
    return RoleConfigError(f"role {role} settings.{field}: {what}")
