"""The hardware report an unknown machine posts from its discovery boot.

The sender is not trusted: it is any machine on the provisioning network. The
document is bounded before it is parsed (size and depth: bootserver/jsonlimits.py
and ``MAX_REPORT_BYTES`` here), then every field is typed with a strict grammar
and a length limit, extra keys are refused, and lists are capped. What passes is
kept as data (JSON in the state store) and only ever reaches a generated file
through the site's own grammar (``enrolment.py`` turns it into a site.yaml node,
which ``validate`` checks like any other).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from provisioner.errors import DiscoveryReportInvalid
from provisioner.inventory.fields import BmcAddress, DiskSerial, DiskWwn
from provisioner.inventory.models import MacAddress

#: a report is a few kilobytes; anything far larger is not one
MAX_REPORT_BYTES = 64 * 1024

#: printable ASCII, one line, bounded: what DMI and sysfs strings are
Text = Annotated[str, StringConstraints(strict=True, max_length=128, pattern=r"^[ -~]*$")]
KernelName = Annotated[
    str, StringConstraints(strict=True, max_length=32, pattern=r"^[a-z][a-z0-9]*$")
]
ByPath = Annotated[
    str, StringConstraints(strict=True, max_length=160, pattern=r"^[A-Za-z0-9][A-Za-z0-9:._+-]*$")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Nic(_Strict):
    mac: MacAddress
    name: KernelName | None = None
    driver: Text | None = None
    link: bool | None = None
    speed_mbps: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class Disk(_Strict):
    name: KernelName
    size_bytes: Annotated[int, Field(ge=0, le=1 << 60)]
    model: Text | None = None
    serial: DiskSerial | None = None
    wwn: DiskWwn | None = None
    rotational: bool | None = None
    removable: bool = False
    by_path: ByPath | None = None

    @property
    def size_gb(self) -> int:
        return self.size_bytes // 10**9


class Dmi(_Strict):
    vendor: Text | None = None
    product: Text | None = None
    serial: Text | None = None


class Cpu(_Strict):
    model: Text | None = None
    count: Annotated[int, Field(ge=1, le=65536)]


class HardwareReport(_Strict):
    """What one machine says about itself (``boot_mac``: the NIC it network-booted from)."""

    boot_mac: MacAddress
    nics: Annotated[list[Nic], Field(min_length=1, max_length=64)]
    disks: Annotated[list[Disk], Field(max_length=128)] = Field(default_factory=list)
    cpu: Cpu
    memory_mb: Annotated[int, Field(ge=1, le=1 << 30)]
    boot_mode: Literal["bios", "uefi"]
    dmi: Dmi = Field(default_factory=Dmi)
    bmc_address: BmcAddress | None = None

    @property
    def macs(self) -> list[str]:
        """Every NIC's MAC, the boot NIC first."""
        rest = [n.mac for n in self.nics if n.mac != self.boot_mac]
        return [self.boot_mac, *rest]

    @property
    def fixed_disks(self) -> list[Disk]:
        return [d for d in self.disks if not d.removable]

    def summary(self) -> str:
        """One line for `provisioner discovered`."""
        disks = self.fixed_disks
        sizes = ", ".join(f"{d.size_gb} GB" for d in disks) or "no disk"
        who = " ".join(x for x in (self.dmi.vendor, self.dmi.product) if x) or "unknown model"
        return (
            f"{who}, serial {self.dmi.serial or '?'}; {self.cpu.count} CPU, "
            f"{self.memory_mb // 1024} GiB, {len(disks)} disk(s) ({sizes}), "
            f"{len(self.nics)} NIC(s), {self.boot_mode}"
        )


def parse_report(raw: object) -> HardwareReport:
    """A checked report, or DiscoveryReportInvalid naming the first bad field."""
    if not isinstance(raw, dict):
        raise DiscoveryReportInvalid("the report must be a JSON object")
    if isinstance(raw.get("boot_mac"), str) and raw["boot_mac"] not in [
        n.get("mac") for n in raw.get("nics", []) if isinstance(n, dict)
    ]:
        raise DiscoveryReportInvalid("boot_mac: not the MAC of any of the report's nics")
    try:
        return HardwareReport.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "report"
        raise DiscoveryReportInvalid(f"{where}: {first['msg']}") from None
