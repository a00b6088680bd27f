"""The executor: a change set becomes TSIG-signed RFC 2136 UPDATE messages.

Every name's change goes out with prerequisites pinning the rrsets it was
planned from (value-dependent "RRset exists", or "RRset does not exist"), so
a record created or changed by someone else in the meantime makes the server
refuse the whole message rather than lose their record. Changes of many
names share a message, split per zone and kept below the 64 KiB DNS limit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.update

from provisioner.ddns.client import DnsServer, rejected, with_retries
from provisioner.ddns.plan import ChangeSet, Conflict, NameChange

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 60_000  # below 65,535 with room for the TSIG record and compression slack


@dataclass(frozen=True)
class ApplyReport:
    changes: int
    messages: int
    #: records left alone that the operator should know about (ChangeSet.left)
    left: tuple[Conflict, ...] = field(default=())


def add_change(msg: dns.update.UpdateMessage, change: NameChange) -> None:
    """Prerequisites and updates of one name, deletions before additions."""
    name = dns.name.from_text(change.name)
    for rtype in change.rtypes():
        old = change.before.get(rtype)
        if old is not None:
            msg.present(name, rtype, *sorted(old.values))
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
            msg.replace(name, new.ttl, rtype, *sorted(new.values))


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


def apply_changes(
    server: DnsServer,
    changeset: ChangeSet,
    retry_for: float = 30.0,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_names: int | None = None,
) -> ApplyReport:
    """Send every change, zone by zone (forward zone first)."""
    zones: list[str] = []
    for change in changeset.changes:
        if change.zone not in zones:
            zones.append(change.zone)
    messages = 0
    for zone in zones:
        changes = changeset.for_zone(zone)
        owners = sorted({c.owner for c in changes})
        for msg in chunk_changes(server, zone, changes, max_bytes, max_names):
            messages += 1
            what = f"update of zone {zone}"
            if len(owners) == 1:
                what = f"{owners[0]}: {what}"
            send_update(server, msg, what, retry_for)
        for change in changes:
            for line in change.lines():
                log.info("%s: %s", change.owner or "dns", line)
    return ApplyReport(len(changeset.changes), messages)
