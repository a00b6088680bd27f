"""RFC 2136 UPDATE messages written straight to wire format, then TSIG-signed.

dnspython's UpdateMessage builds an object per record (rdata, rdataset, rrset)
and compresses every name through a lookup table: at 1,000 nodes that was most
of an apply's CPU (0.5 s of 1.1 s). The records we publish are few types with
plain names, so this writer emits their bytes directly:

- the zone name once (zone section, offset 12); every owner is its labels under
  the zone plus a pointer to it, and each later record of the same owner points
  at its first occurrence (while that is within the 14-bit pointer range);
- prerequisites and updates exactly as ``update.add_change`` puts them in a
  dnspython message (a unit test compares the two sections record by record);
- the TSIG record signed by dnspython's own ``dns.tsig.sign``, and the answer's
  TSIG checked by dnspython when the response is parsed.

Each change is appended whole or not at all, so a message never passes
``max_bytes`` (real bytes, not an estimate).
"""

from __future__ import annotations

import socket
import struct
import time

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from provisioner.ddns.plan import NameChange
from provisioner.ddns.records import RRset

_IN, _NONE, _ANY = 1, 254, 255
_SOA = 6
_TSIG = int(dns.rdatatype.TSIG)
_UPDATE_FLAGS = 5 << 11  # opcode UPDATE
_FUDGE = 300
_MAX_POINTER = 0x3FFF


def name_wire(text: str) -> bytes:
    """An absolute name, uncompressed."""
    if "\\" in text:
        return dns.name.from_text(text).to_wire() or b""
    labels = text.rstrip(".").split(".") if text.strip(".") else []
    return b"".join(bytes([len(x)]) + x.encode("ascii") for x in labels) + b"\0"


def rdata_wire(rtype: str, value: str) -> bytes:
    """One record's rdata (names in it uncompressed, as RFC 3597 prefers)."""
    if rtype == "A":
        return socket.inet_aton(value)
    if rtype in ("PTR", "CNAME"):
        return name_wire(value)
    if rtype == "TXT" and len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        if '"' not in inner and "\\" not in inner and len(inner.encode()) < 256:
            data = inner.encode()
            return bytes([len(data)]) + data
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, value).to_wire() or b""


class UpdateWriter:
    """The records of one UPDATE message for ``zone``, change by change."""

    def __init__(self, zone: str) -> None:
        self.zone = zone.lower() if zone.endswith(".") else zone.lower() + "."
        self.zone_wire = name_wire(self.zone)
        self._suffix = "." + self.zone
        self.prereq = bytearray()
        self.updates = bytearray()
        self.prcount = 0
        self.upcount = 0
        self._owner_at: int | None = None  # absolute offset of the current owner name

    @property
    def _prereq_base(self) -> int:
        return 12 + len(self.zone_wire) + 4

    def size(self) -> int:
        return self._prereq_base + len(self.prereq) + len(self.updates)

    def _owner(self, name: str, section: bytearray, base: int) -> bytes:
        """The owner name: a pointer to its first occurrence, else labels + zone pointer."""
        if self._owner_at is not None:
            return struct.pack("!H", 0xC000 | self._owner_at)
        if name == self.zone:
            wire = b"\xc0\x0c"
        elif name.endswith(self._suffix) and "\\" not in name:
            labels = name[: -len(self._suffix)].split(".")
            wire = b"".join(bytes([len(x)]) + x.encode("ascii") for x in labels) + b"\xc0\x0c"
        else:
            wire = name_wire(name)
        at = base + len(section)
        if at <= _MAX_POINTER:
            self._owner_at = at
        return wire

    def _rr(
        self, prereq: bool, name: str, rtype: int, rclass: int, ttl: int, rdata: bytes = b""
    ) -> None:
        if prereq:
            section, base = self.prereq, self._prereq_base
            self.prcount += 1
        else:
            section, base = self.updates, self._prereq_base + len(self.prereq)
            self.upcount += 1
        owner = self._owner(name, section, base)
        section += owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata

    def add(self, change: NameChange, max_bytes: int | None = None) -> bool:
        """Append ``change`` (as ``update.add_change`` does); False, and nothing
        appended, if the message would pass ``max_bytes``."""
        marks = (len(self.prereq), len(self.updates), self.prcount, self.upcount)
        self._owner_at = None
        name = change.name
        types = change.rtypes()
        codes = {t: int(dns.rdatatype.from_text(t)) for t in types}
        for rtype in types:
            old = change.before.get(rtype)
            if old is not None:
                for value in sorted(old.values):
                    self._rr(True, name, codes[rtype], _IN, 0, rdata_wire(rtype, value))
            else:
                self._rr(True, name, codes[rtype], _NONE, 0)
        if "CNAME" in change.after and not change.before:
            self._rr(True, name, _ANY, _NONE, 0)
        for rtype in types:
            if rtype not in change.after and rtype in change.before:
                self._rr(False, name, codes[rtype], _ANY, 0)
        for rtype in types:
            new: RRset | None = change.after.get(rtype)
            if new is not None and new != change.before.get(rtype):
                self._rr(False, name, codes[rtype], _ANY, 0)
                for value in sorted(new.values):
                    self._rr(False, name, codes[rtype], _IN, new.ttl, rdata_wire(rtype, value))
        if max_bytes is not None and self.size() > max_bytes and marks[2] + marks[3] > 0:
            del self.prereq[marks[0] :]
            del self.updates[marks[1] :]
            self.prcount, self.upcount = marks[2], marks[3]
            return False
        return True

    @property
    def empty(self) -> bool:
        return not (self.prcount or self.upcount)

    def signed(self, keyname: dns.name.Name, key: dns.tsig.Key, msg_id: int) -> tuple[bytes, bytes]:
        """(wire with its TSIG record, the request MAC to check the answer with)."""
        header = struct.pack("!HHHHHH", msg_id, _UPDATE_FLAGS, 1, self.prcount, self.upcount, 0)
        body = (
            header
            + self.zone_wire
            + struct.pack("!HH", _SOA, _IN)
            + bytes(self.prereq)
            + bytes(self.updates)
        )
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, _FUDGE, b"", msg_id, 0, b""
        )
        tsig, _ctx = dns.tsig.sign(body, key, template, int(time.time()), None)
        rdata = tsig.to_wire() or b""
        record = (
            (keyname.to_wire() or b"") + struct.pack("!HHIH", _TSIG, _ANY, 0, len(rdata)) + rdata
        )
        wire = body[:10] + struct.pack("!H", 1) + body[12:] + record
        return wire, tsig.mac


def exchange(
    wire: bytes,
    request_mac: bytes,
    address: str,
    port: int,
    timeout: float,
    keyring: dict[dns.name.Name, dns.tsig.Key],
) -> dns.message.Message:
    """Send one signed message over TCP; the answer, its TSIG checked."""
    expiration = time.time() + timeout
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        dns.query.send_tcp(sock, wire, expiration)
        response, _ = dns.query.receive_tcp(
            sock, expiration, keyring=keyring, request_mac=request_mac
        )
    (msg_id,) = struct.unpack("!H", wire[:2])
    if response.id != msg_id or not response.flags & dns.flags.QR:
        raise dns.query.BadResponse("the answer is not the response to this update")
    return response
