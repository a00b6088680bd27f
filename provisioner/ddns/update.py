"""The executor: a change set becomes TSIG-signed RFC 2136 UPDATE messages.

Every name's change goes out with prerequisites pinning the rrsets it was
planned from (value-dependent "RRset exists", or "RRset does not exist"), so
a record created or changed by someone else in the meantime makes the server
refuse the whole message rather than lose their record. Changes of many
names share a message, split per zone and kept below the 64 KiB DNS limit.

A refused message (REFUSED, SERVFAIL, FORMERR: a policy or a record the
server will not take) is split by owner and sent again in halves, down to one
owner a message, so one bad node neither fails the others nor hides behind
the batch: every owner still refused is named with its names and record types.
Prerequisite failures (the zone changed) and TSIG errors are not split: the
first means plan again, the second fails every message alike.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.update

from provisioner.ddns.client import DnsServer, rejected, with_retries
from provisioner.ddns.plan import ChangeSet, Conflict, NameChange
from provisioner.ddns.records import RRset
from provisioner.ddns.wire import UpdateWriter, exchange
from provisioner.errors import DnsAuthError, DnsChanged, DnsPartlyRejected, DnsRejected

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 60_000  # below 65,535 with room for the TSIG record and compression slack


#: RCODEs after which a batch is split and sent again owner by owner
SPLIT_RCODES = {"REFUSED", "SERVFAIL", "FORMERR", "NOTIMP"}

_IN = dns.rdataclass.IN


@dataclass(frozen=True)
class ApplyReport:
    changes: int
    messages: int
    #: records left alone that the operator should know about (ChangeSet.left)
    left: tuple[Conflict, ...] = field(default=())
    #: update messages the server accepted, per zone (for the serial check of ddns/memo.py)
    accepted: dict[str, int] = field(default_factory=dict)
    #: SOA serial of each zone as the plan read it (None: not read by a transfer)
    serials: dict[str, int | None] = field(default_factory=dict)
    #: names this site published that site.yaml no longer has (ChangeSet.orphans)
    orphans: tuple[str, ...] = field(default=())


def _rdata(rtype: str, value: str) -> dns.rdata.Rdata:
    """One record's rdata, built directly for the types we publish: parsing the text
    form through dnspython's tokenizer was 40% of an apply's CPU at 1,000 nodes."""
    if rtype == "A":
        return dns.rdtypes.IN.A.A(_IN, dns.rdatatype.A, value)
    if rtype == "PTR":
        return dns.rdtypes.ANY.PTR.PTR(_IN, dns.rdatatype.PTR, dns.name.from_text(value))
    if rtype == "CNAME":
        return dns.rdtypes.ANY.CNAME.CNAME(_IN, dns.rdatatype.CNAME, dns.name.from_text(value))
    if rtype == "TXT" and value.startswith('"') and value.endswith('"') and "\\" not in value:
        inner = value[1:-1]
        if '"' not in inner:
            return dns.rdtypes.ANY.TXT.TXT(_IN, dns.rdatatype.TXT, [inner.encode()])
    return dns.rdata.from_text(_IN, rtype, value)


def _rdatas(rtype: str, rrset: RRset) -> list[dns.rdata.Rdata]:
    return [_rdata(rtype, v) for v in sorted(rrset.values)]


def add_change(msg: dns.update.UpdateMessage, change: NameChange) -> None:
    """Prerequisites and updates of one name, deletions before additions."""
    name = dns.name.from_text(change.name)
    for rtype in change.rtypes():
        old = change.before.get(rtype)
        if old is not None:
            msg.present(name, *_rdatas(rtype, old))
        else:
            msg.absent(name, rtype)
    if "CNAME" in change.after and not change.before:
        msg.absent(name)  # a CNAME must be alone at its name
    for rtype in change.rtypes():
        if rtype not in change.after and rtype in change.before:
            msg.delete(name, rtype)
    for rtype in change.rtypes():
        new = change.after.get(rtype)
        if new is not None and new != change.before.get(rtype):
            msg.replace(name, new.ttl, *_rdatas(rtype, new))


def _new_message(server: DnsServer, zone: str) -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(
        zone, keyring=server.keyring, keyname=server.keyname, keyalgorithm=server.algorithm
    )


def wire_size_bound(change: NameChange) -> int:
    """An upper bound of the bytes ``add_change`` adds to a message.

    The owner name is counted in full once; every record after it in the
    message points back to it (2 bytes) plus type, class, TTL and length (10).
    """
    rr = 12
    size = len(change.name) + 2 + (rr if "CNAME" in change.after and not change.before else 0)
    for rtype in change.rtypes():
        old, new = change.before.get(rtype), change.after.get(rtype)
        size += sum(rr + len(v) + 2 for v in old.values) if old else rr
        if new != old:
            size += rr + (sum(rr + len(v) + 2 for v in new.values) if new else 0)
    return size


def chunk_changes(
    server: DnsServer,
    zone: str,
    changes: Sequence[NameChange],
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_names: int | None = None,
) -> Iterator[dns.update.UpdateMessage]:
    """Messages carrying ``changes``, each under ``max_bytes`` on the wire."""
    base = len(_new_message(server, zone).to_wire())
    msg, size, count = _new_message(server, zone), base, 0
    for change in changes:
        cost = wire_size_bound(change)
        if count and (size + cost > max_bytes or (max_names is not None and count >= max_names)):
            yield msg
            msg, size, count = _new_message(server, zone), base, 0
        add_change(msg, change)
        size, count = size + cost, count + 1
    if count:
        yield msg


def send_update(
    server: DnsServer, msg: dns.update.UpdateMessage, what: str, retry_for: float
) -> None:
    response: dns.message.Message = with_retries(server, lambda: server.tcp(msg), what, retry_for)
    rcode = dns.rcode.to_text(response.rcode())
    if rcode != "NOERROR":
        raise rejected(what, server.where, rcode)


def _by_owner(changes: Sequence[NameChange]) -> list[list[NameChange]]:
    groups: dict[str, list[NameChange]] = {}
    for change in changes:
        groups.setdefault(change.owner, []).append(change)
    return list(groups.values())


def _describe(changes: Sequence[NameChange]) -> str:
    names = sorted({f"{c.name} {'/'.join(c.rtypes())}" for c in changes})
    return ", ".join(names)


@dataclass
class _Sender:
    """Sends one zone's changes; splits refused batches down to single owners."""

    server: DnsServer
    zone: str
    retry_for: float
    max_bytes: int
    max_names: int | None
    messages: int = 0
    accepted: int = 0
    sent: list[NameChange] = field(default_factory=list)
    refused: list[tuple[str, DnsRejected]] = field(default_factory=list)

    def send(self, changes: Sequence[NameChange]) -> None:
        writer, batch = UpdateWriter(self.zone), list[NameChange]()
        for change in changes:
            full = self.max_names is not None and len(batch) >= self.max_names
            if batch and (full or not writer.add(change, self.max_bytes)):
                self._send_batch(batch, writer)
                writer, batch = UpdateWriter(self.zone), []
                writer.add(change)  # alone, even if one change passed max_bytes
            elif not batch:
                writer.add(change)
            batch.append(change)
        if batch:
            self._send_batch(batch, writer)

    def _send_batch(self, changes: list[NameChange], writer: UpdateWriter | None = None) -> None:
        if writer is None:
            writer = UpdateWriter(self.zone)
            for change in changes:
                writer.add(change)
        owners = sorted({c.owner for c in changes})
        what, detail = f"update of zone {self.zone}", ""
        if len(owners) == 1:
            what, detail = f"{owners[0] or 'dns'}: {what}", _describe(changes)
        self.messages += 1
        try:
            self._send_wire(writer, what, detail)
        except (DnsChanged, DnsAuthError):
            raise
        except DnsRejected as exc:
            if exc.rcode not in SPLIT_RCODES:
                raise
            if len(owners) == 1:
                self.refused.append((owners[0], exc))
                return
            groups = _by_owner(changes)
            half = len(groups) // 2
            log.info(
                "zone %s: batch of %d owners refused (%s), sending it again in halves",
                self.zone,
                len(groups),
                exc.rcode,
            )
            for part in (groups[:half], groups[half:]):
                self._send_batch([c for group in part for c in group])
            return
        self.accepted += 1
        self.sent.extend(changes)

    def _send_wire(self, writer: UpdateWriter, what: str, detail: str) -> None:
        server = self.server
        wire, mac = writer.signed(
            server.keyname, server.keyring[server.keyname], secrets.randbelow(1 << 16)
        )

        def exchange_once() -> dns.message.Message:
            return exchange(wire, mac, server.address, server.port, server.timeout, server.keyring)

        response = with_retries(server, exchange_once, what, self.retry_for)
        rcode = dns.rcode.to_text(response.rcode())
        if rcode != "NOERROR":
            exc = rejected(what, server.where, rcode)
            if detail:  # which records of the owner: the name and field to look at
                exc = type(exc)(f"{exc} (records: {detail})", rcode)
            raise exc


def apply_changes(
    server: DnsServer,
    changeset: ChangeSet,
    retry_for: float = 30.0,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_names: int | None = None,
) -> ApplyReport:
    """Send every change, zone by zone (forward zone first).

    An owner refused in one zone gets no change in the later zones (no PTR to a
    name whose A was refused). When owners were refused, the others' changes are
    in and the error lists each refused owner: DnsPartlyRejected if some went in.
    """
    zones: list[str] = []
    for change in changeset.changes:
        if change.zone not in zones:
            zones.append(change.zone)
    messages, sent, accepted = 0, 0, {}
    refused: list[tuple[str, DnsRejected]] = []
    skipped: list[str] = []
    for zone in zones:
        bad = {owner for owner, _ in refused}
        changes = [c for c in changeset.for_zone(zone) if c.owner not in bad or not c.owner]
        skipped += [f"{c.owner}: {c.name} {'/'.join(c.rtypes())}" for c in changeset.for_zone(zone)
                    if c.owner in bad and c.owner]  # fmt: skip
        sender = _Sender(server, zone, retry_for, max_bytes, max_names)
        try:
            sender.send(changes)
        finally:
            messages += sender.messages
            for change in sender.sent:
                for line in change.lines():
                    log.info("%s: %s", change.owner or "dns", line)
        sent += len(sender.sent)
        accepted[zone] = sender.accepted
        refused += sender.refused
    if refused:
        lines = [str(exc) for _owner, exc in refused]
        lines += [f"not sent (its other records were refused): {s}" for s in skipped]
        rcode = refused[0][1].rcode
        head = f"{len(refused)} DNS update(s) refused"
        if sent:
            raise DnsPartlyRejected(
                f"{head}; {sent} other change(s) applied:\n" + "\n".join(f"  {x}" for x in lines),
                rcode,
                lines,
            )
        if len(lines) == 1:
            raise refused[0][1]
        raise DnsRejected(f"{head}, nothing applied:\n" + "\n".join(f"  {x}" for x in lines), rcode)
    return ApplyReport(len(changeset.changes), messages, accepted=accepted)
