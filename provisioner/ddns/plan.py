"""The DNS change set: desired records against what the server holds (pure).

``plan()`` takes what to publish, what to retire, and the zones as read from
the server, and returns per-name changes plus the conflicts that forbid them.
Each change carries the exact prior state it was computed from, so the
executor turns it into RFC 2136 prerequisites: if the server changed in
between, the update fails instead of overwriting someone else's record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provisioner.ddns.records import (
    MANAGED_FORWARD_TYPES,
    Marker,
    NameRecords,
    Owner,
    Publication,
    RRset,
    absolute,
    reverse_name,
)


@dataclass
class ZoneData:
    """One zone's records as read from the server: name -> rtype -> rrset.

    ``complete`` is True after a zone transfer (every name is there) and False
    after per-name queries (only the names asked about).
    """

    zone: str
    names: dict[str, NameRecords] = field(default_factory=dict)
    complete: bool = True
    #: the SOA serial the transfer came with (None after per-name queries)
    serial: int | None = None

    def get(self, name: str) -> NameRecords:
        return self.names.get(name, {})

    def values(self, name: str, rtype: str) -> frozenset[str]:
        rrset = self.get(name).get(rtype)
        return rrset.values if rrset else frozenset()


@dataclass(frozen=True)
class Conflict:
    owner: str  # who wanted the change ("node cmp3")
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.owner}: {self.name} {self.message}"


@dataclass(frozen=True)
class NameChange:
    """The managed rrsets of one name, before (as read) and after."""

    zone: str
    name: str
    owner: str
    before: NameRecords
    after: NameRecords

    @property
    def action(self) -> str:
        if not self.before:
            return "add"
        return "delete" if not self.after else "update"

    def rtypes(self) -> list[str]:
        return sorted(set(self.before) | set(self.after))

    def lines(self) -> list[str]:
        """Human-readable '+'/'-' lines, one per rrset change."""
        out = []
        for rtype in self.rtypes():
            old, new = self.before.get(rtype), self.after.get(rtype)
            if old == new:
                continue
            if old is not None and (new is None or old != new):
                out.append(f"- {self.name} {old.ttl} {rtype} {old.show()}")
            if new is not None:
                out.append(f"+ {self.name} {new.ttl} {rtype} {new.show()}")
        return out


@dataclass
class ChangeSet:
    changes: list[NameChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # our names no longer in the site
    #: records a retirement leaves in place because this site cannot prove it wrote them
    #: (a PTR to the retired name, or at its address, with no ownership of ours): not
    #: errors, nothing of theirs is touched, but the operator is told (see ``left_in_place``)
    left: list[Conflict] = field(default_factory=list)

    def for_zone(self, zone: str) -> list[NameChange]:
        return [c for c in self.changes if c.zone == zone]


def _marker(records: NameRecords) -> Marker | None:
    txt = records.get("TXT")
    for value in txt.values if txt else ():
        marker = Marker.parse(value)
        if marker is not None:
            return marker
    return None


class _Planner:
    def __init__(
        self,
        site_name: str,
        forward: ZoneData,
        reverse: ZoneData,
        known: Iterable[Publication],
    ) -> None:
        self.site_name = site_name
        self.forward, self.reverse = forward, reverse
        self.known_names = {n for pub in known for n in pub.forward}
        self.after_a: dict[str, frozenset[str]] = {}  # names in scope -> A values after
        self.fwd_after: dict[str, tuple[str, NameRecords]] = {}
        self.ptr_wanted: dict[str, tuple[str, str]] = {}  # ptr name -> (owner label, target)
        self.ptr_ttl: dict[str, int] = {}
        self.conflicts: list[Conflict] = []
        self.left: list[Conflict] = []
        self.retired: dict[str, str] = {}  # retired name -> owner label
        self.holders: dict[str, list[str]] = {}  # address -> names with that A, as read
        for name, records in forward.names.items():
            for address in records["A"].values if "A" in records else ():
                self.holders.setdefault(address, []).append(name)

    # -- ownership --
    def wrote_ptr(self, name: str, address: str) -> bool:
        """Whether the PTR ``address`` -> ``name`` is provably this site's.

        A PTR carries no marker of its own: it is ours only if its target is a
        name this site published (its TXT marker, as read) whose A record, as
        read, holds that address, the pair this site writes together. A PTR to
        one of our names at another address was written by someone else, and
        is left alone (or reported, where the site wants that address).
        """
        marker = _marker(self.forward.get(name))
        if marker is None or marker.site != self.site_name:
            return False
        return address in self.forward.values(name, "A")

    def holds(self, name: str, address: str) -> bool:
        if name in self.after_a:
            return address in self.after_a[name]
        return address in self.forward.values(name, "A")

    def describe_holder(self, name: str) -> str:
        marker = _marker(self.forward.get(name))
        if marker is not None:
            return f"{name} ({marker.describe(self.site_name)})"
        return f"{name} (not published by provisioner)"

    def claim_name(self, owner: Owner, name: str, want: NameRecords) -> bool:
        """Whether ``owner`` may write ``name``; records a conflict if not."""
        held = {t: r for t, r in self.forward.get(name).items() if t in MANAGED_FORWARD_TYPES}
        if not held:
            return True
        if "CNAME" in want:
            target = next(iter(held["CNAME"].values)) if "CNAME" in held else None
            if target is not None and target in self.known_names:
                return True
            what = f"an alias of {target}" if target else f"{_show(held)}"
            self._conflict(owner.label, name, f"already holds {what}, not this site's alias")
            return False
        marker = _marker(held)
        if marker is not None:
            if marker.site == self.site_name and marker.owner == owner:
                return True
            self._conflict(
                owner.label, name, f"is already published for {marker.describe(self.site_name)}"
            )
            return False
        if "CNAME" in held:
            self._conflict(owner.label, name, f"is already an alias of {held['CNAME'].show()}")
            return False
        if held.get("A") is not None and held["A"].values == want["A"].values and "TXT" not in held:
            return True  # same address, published by hand: adopt it
        self._conflict(
            owner.label, name, f"already holds {_show(held)}, not published by provisioner"
        )
        return False

    def _conflict(self, owner: str, name: str, message: str) -> None:
        self.conflicts.append(Conflict(owner, name, message))

    # -- steps --
    def publish(self, pub: Publication) -> None:
        for name, want in pub.forward.items():
            if self.claim_name(pub.owner, name, want):
                self.fwd_after[name] = (pub.owner.label, want)
        for address, name in pub.addresses.items():
            for other in self.holders.get(address, []):
                if other != name and self.holds(other, address):
                    self._conflict(
                        pub.owner.label,
                        name,
                        f"wants {address}, which is already held by {self.describe_holder(other)}",
                    )
        for ptr, target in pub.reverse.items():
            self.ptr_wanted[ptr] = (pub.owner.label, target)
            a = pub.forward.get(target, {}).get("A")
            self.ptr_ttl[ptr] = a.ttl if a else 0

    def retire(self, owner: Owner, name: str) -> None:
        held = self.forward.get(name)
        if not held:
            return
        marker = _marker(held)
        if marker is None or marker.site != self.site_name or marker.owner != owner:
            self._conflict(owner.label, name, "is not published by this site for it: left alone")
            return
        self.fwd_after[name] = (owner.label, {})

    def forward_changes(self) -> list[NameChange]:
        changes = []
        for name, (owner, want) in sorted(self.fwd_after.items()):
            before = {t: r for t, r in self.forward.get(name).items() if t in MANAGED_FORWARD_TYPES}
            if before != want:
                changes.append(NameChange(self.forward.zone, name, owner, before, want))
        return changes

    def reverse_changes(self) -> list[NameChange]:
        touched = set(self.ptr_wanted)
        in_scope = set(self.after_a)
        for ptr, records in self.reverse.names.items():
            ptrs = records.get("PTR")
            if ptrs is not None and not ptrs.values.isdisjoint(in_scope):
                touched.add(ptr)
        for name in self.after_a:  # old addresses (per-name reads see only these)
            touched.update(reverse_name(a) for a in self.forward.values(name, "A"))
        changes = []
        for ptr in sorted(touched):
            before_set = self.reverse.get(ptr).get("PTR")
            values = set(before_set.values if before_set else ())
            address = _address_of(ptr)
            owner, want = self.ptr_wanted.get(ptr, ("", ""))
            for value in list(values):
                mine = value != want and self.wrote_ptr(value, address)
                if mine and not self.holds(value, address):
                    values.discard(value)  # our old PTR: the name moved or is retired
            if not want:
                self.left_in_place(ptr, address, values)
            if want:
                others = values - {want}
                for other in sorted(others):
                    holder = (
                        self.describe_holder(other)
                        if self.wrote_ptr(other, address)
                        else f"{other} (not published by provisioner)"
                    )
                    self._conflict(owner, ptr, f"(address {address}) already points to {holder}")
                if others:
                    continue
                values = {want}
            ttl = self.ptr_ttl[ptr] if want else (before_set.ttl if before_set else 0)
            after = {"PTR": RRset(ttl, frozenset(values))} if values else {}
            before = {"PTR": before_set} if before_set else {}
            if before != after:
                label = owner or self._owner_of_ptr(before_set)
                changes.append(NameChange(self.reverse.zone, ptr, label, before, after))
        return changes

    def left_in_place(self, ptr: str, address: str, values: set[str]) -> None:
        """Note each PTR value that stays although it names a retired name or sits at a
        retired name's address: someone else wrote it (no marker of ours proves otherwise),
        so it is left alone, and the owner of the retirement is told which record stays."""
        for value in sorted(values):
            if self.wrote_ptr(value, address) and self.holds(value, address):
                continue  # ours, and still right
            whose = self.retired.get(value) or next(
                (
                    label
                    for name, label in sorted(self.retired.items())
                    if address in self.forward.values(name, "A")
                ),
                None,
            )
            if whose is not None:
                self.left.append(
                    Conflict(
                        whose,
                        ptr,
                        f"(address {address}) PTR {value} left in place: not published by "
                        "provisioner (remove it by hand if it is stale)",
                    )
                )

    def _owner_of_ptr(self, rrset: RRset | None) -> str:
        for value in sorted(rrset.values if rrset else ()):
            if value in self.fwd_after:
                return self.fwd_after[value][0]
        return ""


def _address_of(ptr: str) -> str:
    labels = ptr.rstrip(".").split(".")[:4]
    return ".".join(reversed(labels))


def _show(records: NameRecords) -> str:
    return "; ".join(f"{t} {r.show()}" for t, r in sorted(records.items()))


def plan(
    site_name: str,
    forward: ZoneData,
    reverse: ZoneData,
    publish: Iterable[Publication] = (),
    retire: Iterable[tuple[Owner, str]] = (),
    known: Iterable[Publication] = (),
) -> ChangeSet:
    """Changes that publish ``publish`` and remove ``retire`` ((owner, fqdn) pairs).

    ``known`` is every publication of the site (for recognising its own aliases
    and orphans); the publications in scope are always known.
    """
    publish, retire, known = list(publish), list(retire), list(known)
    planner = _Planner(site_name, forward, reverse, [*known, *publish])
    for pub in publish:
        for name, records in pub.forward.items():
            if "A" in records:
                planner.after_a[name] = records["A"].values
    for owner, name in retire:
        planner.after_a[absolute(name)] = frozenset()
        planner.retired[absolute(name)] = owner.label
    for pub in publish:
        planner.publish(pub)
    for owner, name in retire:
        planner.retire(owner, absolute(name))
    changes = planner.forward_changes() + planner.reverse_changes()
    known_names = {n for pub in [*known, *publish] for n in pub.forward}
    orphans = sorted(
        name
        for name, records in forward.names.items()
        if (m := _marker(records)) is not None and m.site == site_name and name not in known_names
    )
    return ChangeSet(changes, planner.conflicts, orphans, planner.left)


def orphan_owners(
    site_name: str, forward: ZoneData, names: Iterable[str]
) -> list[tuple[Owner, str]]:
    """(owner, name) pairs to retire for orphans found by ``plan``."""
    out = []
    for name in names:
        marker = _marker(forward.get(name))
        if marker is not None and marker.site == site_name:
            out.append((marker.owner, name))
    return out
