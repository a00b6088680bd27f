"""Typed models of site.yaml (pydantic). Structure only: cross-checks live in checks.py."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from provisioner.content import ContentPaths
from provisioner.inventory.fields import (
    AddressText,
    BmcAddress,
    BmcUser,
    BondMode,
    BondOptions,
    BootFile,
    ContentName,
    DiskByPath,
    DiskName,
    DiskSerial,
    DiskWwn,
    KernelArgs,
    KernelInterface,
    Locale,
    PackageName,
    RackName,
    RepoUrl,
    ServiceName,
    SshPublicKey,
    Timezone,
)
from provisioner.inventory.index import SiteIndex
from provisioner.inventory.macs import nic_mac
from provisioner.inventory.rolesettings import RoleSettings, parse_settings, settings_error
from provisioner.inventory.secrets import SecretRef

RoleKind = Literal["controller", "network", "storage", "compute"]
ROLE_KINDS: tuple[str, ...] = ("controller", "network", "storage", "compute")
BootMode = Literal["uefi", "bios"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
Label = Annotated[
    str,
    StringConstraints(strict=True, pattern=rf"^{_LABEL}$"),
    Field(description="A DNS label: lowercase letters, digits and '-', at most 63 characters"),
]
DomainName = Annotated[
    str,
    StringConstraints(strict=True, pattern=rf"^{_LABEL}(?:\.{_LABEL})*\.?$", max_length=253),
]
MacAddress = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(nic_mac),
    Field(description="A NIC's MAC address; quote it in YAML: '52:54:00:12:34:56'"),
]
Port = Annotated[int, Field(ge=1, le=65535)]
IPv4 = Annotated[IPv4Address, AddressText]
IPv4Net = Annotated[IPv4Network, AddressText]
InterfaceName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.:-]{1,15}$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(Model):
    name: Label
    domain: DomainName = Field(description="DNS domain of the nodes: <node>.<domain>")


class AddressRange(Model):
    start: IPv4
    end: IPv4

    @model_validator(mode="after")
    def _ordered(self) -> AddressRange:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPv4Address) and self.start <= address <= self.end


class ProvisionerEndpoint(Model):
    address: IPv4 = Field(description="The provisioner's own address on this network")
    http_port: Port = 8080
    tftp_port: Port = 69
    interface: InterfaceName | None = Field(None, description="Interface dnsmasq listens on")

    @property
    def base_url(self) -> str:
        """The boot server's HTTP address as nodes reach it: the one place it is spelt."""
        return f"http://{self.address}:{self.http_port}"


class Network(Model):
    cidr: IPv4Net
    gateway: IPv4 | None = None
    dhcp_pool: AddressRange | None = Field(
        None, description="Dynamic DHCP range for unknown machines (discovery); nodes get fixed IPs"
    )
    dns_servers: list[IPv4] = Field(default_factory=list)
    provisioner: ProvisionerEndpoint
    dhcp_mode: Literal["managed", "proxy"] = Field(
        "managed", description="'proxy' when another DHCP server hands out addresses"
    )
    unknown_macs: Literal["ignore", "discover"] = Field(
        "ignore", description="What an unknown MAC gets: nothing, or a discovery boot"
    )
    boot_addresses: Literal["fixed", "dynamic"] = Field(
        "fixed",
        description=(
            "The address a node boots with: 'fixed' (its ip: this DHCP's host entry, or a "
            "reservation on another DHCP), and the boot script carrying its install token "
            "is only handed to that address; 'dynamic' (another DHCP's pool): to any address"
        ),
    )
    relay: IPv4 | None = Field(
        None,
        description=(
            "The DHCP relay (router address, giaddr) that forwards this subnet's DHCP to its "
            "boot servers; without it, the boot servers sit on the subnet itself"
        ),
    )


#: The name of ``network:`` among the provisioning networks (``networks:`` adds more).
MAIN_NETWORK = "main"


TsigAlgorithm = Literal[
    "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"
]


class Tsig(Model):
    name: DomainName
    algorithm: TsigAlgorithm = "hmac-sha256"
    secret: SecretRef


class Dns(Model):
    server: IPv4
    port: Port = 53
    forward_zone: DomainName
    reverse_zone: DomainName
    tsig: Tsig
    ttl: Annotated[int, Field(ge=0)] = 300


#: What every image gets (``provisioner image build``): boot, RAID/LVM, SSH, the
#: first-boot callback (curl) and python3 for the configuration that follows.
#: grub-pc-bin and grub-efi-amd64-bin side by side (grub-pc and grub-efi-amd64
#: conflict); grub-install and update-grub come from grub2-common.
IMAGE_BASE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-cloud-amd64",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "grub2-common",
    "initramfs-tools",
    "zstd",
    "mdadm",
    "lvm2",
    "e2fsprogs",
    "dosfstools",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "curl",
    "ca-certificates",
    "procps",
    "less",
    "python3-minimal",
)

DebPackage = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9+.-]+$")]


class ImageSource(Model):
    """A profile that installs an image (mmdebstrap) instead of packages from a repository."""

    suite: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9-]+$")] = "bookworm"
    variant: Literal["minbase", "essential", "required", "important", "standard"] = "minbase"
    mirror: str | None = Field(
        None,
        description="Apt mirror URL or sources line; default: this machine's apt sources",
    )
    packages: list[DebPackage] = Field(
        default_factory=lambda: list(IMAGE_BASE_PACKAGES),
        description="Debian packages of every image of this profile (roles add theirs)",
    )
    slim: bool = Field(True, description="Leave out man pages, locales and docs (not copyrights)")
    apply_bundle: bool = Field(
        True,
        description="The installed system pulls and applies its HA bundle on first boot and "
        "the node is active only after its report; false: active once its hooks ran",
    )


class Profile(Model):
    os_family: Literal["rhel", "debian"] = "rhel"
    kernel: BootFile = Field(description="Kernel path (under the boot files folder) or URL")
    initrd: BootFile
    repo: RepoUrl | None = Field(
        None, description="Install repository URL (package installs: http, https, ftp or nfs)"
    )
    image: ImageSource | None = Field(
        None, description="Install an image built by `provisioner image build` (liveimg)"
    )
    kickstart: ContentName = Field("default.ks.j2", description="Template in kickstart/")
    kernel_args: KernelArgs = ""

    @model_validator(mode="after")
    def _one_source(self) -> Profile:
        if self.repo is None and self.image is None:
            raise ValueError("repo: or image: required (where the installer gets the OS)")
        if self.repo is not None and self.image is not None:
            raise ValueError("repo: and image: both given; a profile installs one source")
        return self


class Vip(Model):
    name: Label
    address: IPv4
    aliases: list[Label] = Field(
        default_factory=list, description="Service names published as CNAMEs of the VIP"
    )


class RoleHA(Model):
    vips: list[Vip] = Field(default_factory=list)
    quorum_services: list[ServiceName] = Field(
        default_factory=list, description="Services that need a majority (galera, rabbitmq, ...)"
    )


class Role(Model):
    kind: RoleKind | None = Field(None, description="Defaults to the role's name")
    layout: ContentName = Field(description="Partition layout name in kickstart/layouts/")
    hooks: list[ContentName] | None = Field(
        None, description="Hook folders; defaults to [role name]"
    )
    packages: list[PackageName] = Field(default_factory=list)
    image_packages: list[DebPackage] = Field(
        default_factory=list, description="Debian packages the role adds to an image profile's"
    )
    ha: RoleHA = Field(default_factory=RoleHA)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Per role kind (provisioner/inventory/rolesettings.py); unknown keys refused",
    )


class Bmc(Model):
    driver: Literal["ipmi", "redfish", "virtual", "fake"]
    address: BmcAddress
    port: Port | None = None
    user: BmcUser
    password: SecretRef
    verify_tls: bool = True

    @property
    def effective_port(self) -> int:
        """The port the driver talks to: ``port``, else the one a URL address names, else
        the scheme's or driver's default (https 443, http 80, IPMI 623)."""
        if self.port is not None:
            return self.port
        if "://" in self.address:
            url = urlsplit(self.address)
            return url.port or (80 if url.scheme == "http" else 443)
        return 443 if self.driver == "redfish" else 623

    @property
    def location(self) -> str:
        """Where the BMC is, as an operator reads it: the URL when ``address`` is one (with its
        port, never ``URL:PORT``), else ``address:port``."""
        if "://" in self.address:
            url = urlsplit(self.address)
            netloc = f"{url.hostname}:{self.effective_port}"
            return url._replace(netloc=netloc).geturl()
        return f"{self.address}:{self.effective_port}"


class DiskHints(Model):
    by_path: DiskByPath | None = None
    serial: DiskSerial | None = None
    wwn: DiskWwn | None = None
    name: DiskName | None = Field(None, description="Kernel name, e.g. sda or vda")
    min_size_gb: Annotated[int, Field(ge=1)] | None = None
    count: Annotated[int, Field(ge=1, le=1024)] = Field(
        1, description="Disks the node has (at most 1024: a head with several JBODs)"
    )
    select: Literal["smallest", "first"] | None = Field(
        None, description="Which non-removable disk holds the OS; defaults to the layout's choice"
    )


class Bond(Model):
    name: KernelInterface = "bond0"
    interfaces: Annotated[list[KernelInterface], Field(min_length=2)] = Field(
        description="Member NICs by kernel name"
    )
    mode: BondMode = "802.3ad"
    options: BondOptions = Field("miimon=100", description="Extra bonding options, comma separated")


class NodeNetwork(Model):
    """How the node's static address sits on its NICs (default: untagged on the primary MAC)."""

    bond: Bond | None = None
    interface: KernelInterface | None = Field(
        None,
        description="Kernel name of the NIC with the primary MAC (enp1s0); HA daemons bind "
        "to it (keepalived's VRRP), or to the bond when there is one",
    )
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    mtu: Annotated[int, Field(ge=576, le=9216)] | None = None


class Node(Model):
    name: Label
    role: Label
    rack: RackName | None = None
    position: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None,
        description="Lowest rack unit the node occupies in its rack (1 = the bottom); "
        "needs rack; the web dashboard's rack view draws it there",
    )
    macs: Annotated[list[MacAddress], Field(min_length=1)]
    ip: IPv4
    bmc: Bmc
    disks: DiskHints = Field(default_factory=DiskHints)
    profile: Label | None = None
    boot_mode: BootMode | None = None
    network: NodeNetwork = Field(default_factory=NodeNetwork)
    boot_network: Label | None = Field(
        None,
        description=(
            "Its provisioning network: a name under networks:, or 'main' for network: "
            "[default: the one whose cidr holds ip]"
        ),
    )

    @property
    def primary_mac(self) -> str:
        return self.macs[0]


class Defaults(Model):
    profile: Label | None = None
    boot_mode: BootMode = "uefi"
    root_password_hash: SecretRef = Field(description="Reference to a crypt(3) hash")
    ssh_keys: list[SshPublicKey] = Field(default_factory=list)
    timezone: Timezone = "UTC"
    language: Locale = "en_US.UTF-8"


class PipelineTimeouts(Model):
    boot_script: Annotated[float, Field(gt=0)] = Field(
        600, description="Seconds from power cycle to the boot script fetch"
    )
    kickstart: Annotated[float, Field(gt=0)] = 600
    installed: Annotated[float, Field(gt=0)] = Field(
        3600, description="Seconds from kickstart fetch to the installed callback"
    )
    booted: Annotated[float, Field(gt=0)] = Field(
        900,
        description="Seconds from the installed callback to the installed system's first-boot "
        "callback (image installs)",
    )
    active: Annotated[float, Field(gt=0)] = Field(1800, description="Seconds for the hooks")
    applied: Annotated[float, Field(gt=0)] = Field(
        1800,
        description="Seconds from the hooks' end to the node's report of its bundle applied "
        "(image installs: the installed system applies its own bundle)",
    )


class PipelineSettings(Model):
    timeouts: PipelineTimeouts = Field(default_factory=PipelineTimeouts)
    power_retries: Annotated[int, Field(ge=0, le=10)] = Field(
        1, description="Extra power cycles when a node does not fetch its boot script"
    )
    fanout: Annotated[int, Field(ge=1, le=500)] = Field(10, description="Nodes driven at once")
    poll_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    bmc_timeout: Annotated[float, Field(gt=0, le=600)] = Field(
        30, description="Seconds for one BMC command, reaching the new power state included"
    )
    bmc_min_interval: Annotated[float, Field(ge=0, le=60)] = Field(
        0, description="Seconds between two commands to one BMC (for BMCs that drop fast ones)"
    )


class ContentOverrides(Model):
    pxe: str | None = None
    kickstart: str | None = None
    dns: str | None = None
    hooks: str | None = None


#: DMI strings (vendor, product, serial) as a rule names them: printable, one line
DmiText = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[ -~]+$"),
    Field(description="A DMI string as the machine reports it (printable ASCII)"),
]
#: a node name with placeholders filled from the discovered machine: {serial}, {index}
NodeNamePattern = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[a-z0-9-]*(?:\{(?:serial|index)\}[a-z0-9-]*)*$"),
    Field(description="Node name, or a pattern with {serial} / {index} (e.g. cmp-{index})"),
]


class DiscoveryEnvironment(Model):
    """The small OS an unknown machine network-boots to report its hardware."""

    kernel: BootFile
    initrd: BootFile
    kernel_args: KernelArgs = ""


class DiscoveryMatch(Model):
    """What a rule matches in a hardware report; every given field must match."""

    serial: DmiText | None = Field(None, description="DMI system serial (vendor's sheet)")
    vendor: DmiText | None = None
    product: DmiText | None = None
    min_disks: Annotated[int, Field(ge=1, le=128)] | None = None
    max_disks: Annotated[int, Field(ge=1, le=128)] | None = None
    min_disk_gb: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Every disk counted by min_disks is at least this large"
    )
    min_memory_gb: Annotated[int, Field(ge=1)] | None = None
    boot_mode: BootMode | None = None


class DiscoveryBmc(Model):
    """The BMC of an enrolled machine: its address from the report, unless given."""

    driver: Literal["ipmi", "redfish", "virtual", "fake"] = "ipmi"
    address: BmcAddress | None = None
    port: Port | None = None
    user: BmcUser
    password: SecretRef


class DiscoveryEnrolment(Model):
    name: NodeNamePattern
    role: Label
    rack: RackName | None = None
    profile: Label | None = None
    ip: IPv4Address | None = Field(None, description="Default: the next free discovery address")
    bmc: DiscoveryBmc


class DiscoveryRule(Model):
    match: DiscoveryMatch
    enroll: DiscoveryEnrolment


class DiscoverySettings(Model):
    """``network.unknown_macs: discover``: what unknown machines boot, and how they enrol."""

    environment: DiscoveryEnvironment | None = Field(
        None, description="Kernel and initrd of the discovery OS; without it, a notice only"
    )
    addresses: AddressRange | None = Field(
        None, description="Fixed addresses for enrolled machines (outside dhcp_pool)"
    )
    unmatched: Literal["wait", "power_off"] = Field(
        "wait", description="A machine no rule matches: keeps waiting in discovery, or powers off"
    )
    max_reports_per_minute: Annotated[int, Field(ge=1, le=600)] = Field(
        12, description="Discovery reports accepted per source address and minute"
    )
    rules: list[DiscoveryRule] = Field(default_factory=list)


class Site(Model):
    site: SiteInfo
    network: Network
    networks: dict[Label, Network] = Field(
        default_factory=dict,
        description=(
            "More provisioning networks (racks or rooms behind routers), each with its own "
            "boot servers (provisioner serve --networks NAME); network: is named 'main'"
        ),
    )
    dns: Dns
    defaults: Defaults
    profiles: dict[Label, Profile] = Field(min_length=1)
    roles: dict[Label, Role] = Field(min_length=1)
    nodes: list[Node] = Field(default_factory=list)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    content: ContentOverrides = Field(
        default_factory=ContentOverrides,
        description="Site copies of content folders; their files take precedence",
    )

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _index: SiteIndex | None = PrivateAttr(default=None)
    #: secrets resolved for this generation of the site: (reference, base dir) -> value
    _secrets: dict[tuple[SecretRef, Path], SecretStr] = PrivateAttr(default_factory=dict)
    #: each role's settings as its kind's typed model, parsed on first use (keyed by the
    #: Role object: a model_copy with other roles parses its own)
    _settings: dict[str, tuple[Role, RoleSettings]] = PrivateAttr(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _role_kinds(cls, roles: dict[str, Role]) -> dict[str, Role]:
        for name, role in roles.items():
            if role.kind is None and name not in ROLE_KINDS:
                raise ValueError(
                    f"role {name}: kind: required for a role not named after a kind "
                    f"({', '.join(ROLE_KINDS)})"
                )
        return roles

    # -- helpers (pure, no I/O) --
    @property
    def base_dir(self) -> Path:
        """The folder holding site.yaml: relative paths are taken from here."""
        return self._base_dir

    @property
    def index(self) -> SiteIndex:
        """The nodes by name, MAC and IP, built on first use (once per loaded site)."""
        index = self._index
        if index is None or index.nodes is not self.nodes:  # a model_copy with other nodes
            index = SiteIndex.build(self.nodes)
            self._index = index
        return index

    def node(self, name: str) -> Node:
        from provisioner.errors import UnknownNode

        node = self.index.by_name.get(name)
        if node is None:
            raise UnknownNode(name)
        return node

    def node_by_mac(self, mac: str) -> Node | None:
        """The node owning ``mac``, in any spelling (see inventory/macs.py)."""
        return self.index.mac(mac)

    def node_by_ip(self, address: str | IPv4Address) -> Node | None:
        return self.index.ip(address)

    def role_kind(self, role_name: str) -> str:
        role = self.roles[role_name]
        return role.kind or role_name

    def role_settings(self, role_name: str) -> RoleSettings:
        """The role's ``settings`` as the typed model of its kind (rolesettings.py).

        ``validate`` reports a malformed setting with its line; a site built another way
        gets the same check here, as an error naming the role and the field."""
        role = self.roles[role_name]
        cached = self._settings.get(role_name)
        if cached is not None and cached[0] is role:
            return cached[1]
        try:
            typed = parse_settings(self.role_kind(role_name), role.settings)
        except ValidationError as exc:
            raise settings_error(role_name, exc) from None
        self._settings[role_name] = (role, typed)
        return typed

    def nodes_of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.role in self.roles and self.role_kind(n.role) == kind]

    def fqdn(self, node: Node) -> str:
        return f"{node.name}.{self.site.domain.rstrip('.')}"

    def profile_of(self, node: Node) -> str | None:
        return node.profile or self.defaults.profile

    def boot_mode_of(self, node: Node) -> BootMode:
        return node.boot_mode or self.defaults.boot_mode

    def provisioning_networks(self) -> dict[str, Network]:
        """Every provisioning network by name: ``network:`` as 'main', then ``networks:``."""
        return {MAIN_NETWORK: self.network, **self.networks}

    def network_name_of(self, node: Node) -> str | None:
        """The provisioning network a node boots on: its ``boot_network``, else the one
        whose subnet holds its address; None when none does (validate reports it)."""
        if node.boot_network is not None:
            return node.boot_network
        for name, net in self.provisioning_networks().items():
            if node.ip in net.cidr:
                return name
        return None

    def network_of(self, node: Node) -> Network:
        """The node's provisioning network (``network:`` when it names none that exists)."""
        name = self.network_name_of(node)
        return self.provisioning_networks().get(name or MAIN_NETWORK, self.network)

    @property
    def base_url(self) -> str:
        """The boot server's HTTP address as nodes reach it (network.provisioner)."""
        return self.network.provisioner.base_url

    def secret(self, ref: SecretRef, owner: str) -> SecretStr:
        """``ref``'s value, resolved once for this generation of the site.

        A reloaded site.yaml is a new Site and resolves again; an edit of a
        secret file alone is seen at the next reload (or restart)."""
        key = (ref, self.base_dir)
        value = self._secrets.get(key)
        if value is None:
            value = ref.resolve(self.base_dir, owner)
            self._secrets[key] = value
        return value

    def content_paths(self) -> ContentPaths:
        """Where templates are looked up: the site's own copies first, then bundled."""
        overrides = {
            kind: (self.base_dir / folder)
            for kind, folder in self.content.model_dump().items()
            if folder is not None
        }
        return ContentPaths(overrides)
