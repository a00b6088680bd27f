"""The direct wire writer (ddns/wire.py) against dnspython's UpdateMessage.

dnspython parses what we wrote (checking its TSIG with the key), and every
section must hold the same records as the message ``add_change`` builds."""

from __future__ import annotations

import base64
import random

import dns.message
import dns.name
import dns.opcode
import dns.tsig
import dns.update
import pytest

from provisioner.ddns.plan import NameChange
from provisioner.ddns.records import RRset
from provisioner.ddns.update import add_change
from provisioner.ddns.wire import UpdateWriter

ZONE = "lab.example.test."
KEYNAME = dns.name.from_text("provisioner-key")
KEY = dns.tsig.Key(KEYNAME, base64.b64encode(b"k" * 32).decode(), dns.tsig.HMAC_SHA256)


def _changes(n: int, seed: int = 1) -> list[NameChange]:
    """Adds, moves, deletions, markers, aliases and odd TXT values, mixed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"host-{i:05d}.{ZONE}"
        a_old = RRset.of(300, f"192.0.2.{i % 250 + 1}")
        a_new = RRset.of(600, f"198.51.100.{i % 250 + 1}", f"203.0.113.{i % 200 + 1}")
        marker = RRset.of(300, f'"provisioner site=s owner=node/host-{i:05d}"')
        odd = RRset.of(300, '"with \\"quote\\"" "two strings"')
        kind = rng.randrange(5)
        if kind == 0:
            before, after = {}, {"A": a_new, "TXT": marker}
        elif kind == 1:
            before, after = {"A": a_old, "TXT": marker}, {"A": a_new, "TXT": marker}
        elif kind == 2:
            before, after = {"A": a_old, "TXT": odd}, {}
        elif kind == 3:
            before, after = {}, {"CNAME": RRset.of(300, f"api.{ZONE}")}
        else:
            before, after = {"CNAME": RRset.of(300, f"old.{ZONE}")}, {"CNAME": RRset.of(60, ZONE)}
        out.append(NameChange(ZONE, name, f"node host-{i:05d}", before, after))
    return out


def _sections(msg: dns.message.Message) -> list[list[str]]:
    """Each section's records as sorted text (order inside a section is free)."""
    return [sorted(rrset.to_text() for rrset in section) for section in msg.sections]


@pytest.mark.parametrize("count", [1, 7, 400])
def test_written_message_matches_dnspythons(count: int) -> None:
    changes = _changes(count)
    writer = UpdateWriter(ZONE)
    for change in changes:
        assert writer.add(change)
    wire, mac = writer.signed(KEYNAME, KEY, 4242)
    parsed = dns.message.from_wire(wire, keyring={KEYNAME: KEY})  # checks the TSIG too
    assert parsed.id == 4242 and parsed.opcode() == dns.opcode.UPDATE
    assert parsed.had_tsig and parsed.mac == mac

    reference = dns.update.UpdateMessage(ZONE)
    for change in changes:
        add_change(reference, change)
    reference = dns.message.from_wire(reference.to_wire())
    assert _sections(parsed) == _sections(reference)


def test_a_change_that_would_pass_the_limit_is_left_out_whole() -> None:
    changes = _changes(2000, seed=7)
    writer = UpdateWriter(ZONE)
    taken = 0
    for change in changes:
        if not writer.add(change, max_bytes=20_000):
            break
        taken += 1
    assert 0 < taken < len(changes)
    assert writer.size() <= 20_000
    wire, _ = writer.signed(KEYNAME, KEY, 1)
    assert len(wire) <= 20_000 + 200  # the TSIG record on top
    parsed = dns.message.from_wire(wire, keyring={KEYNAME: KEY})
    reference = dns.update.UpdateMessage(ZONE)
    for change in changes[:taken]:
        add_change(reference, change)
    assert _sections(parsed) == _sections(dns.message.from_wire(reference.to_wire()))


def test_wrong_key_fails_the_signature_check() -> None:
    writer = UpdateWriter(ZONE)
    writer.add(_changes(1)[0])
    wire, _ = writer.signed(KEYNAME, KEY, 9)
    other = dns.tsig.Key(KEYNAME, base64.b64encode(b"x" * 32).decode(), dns.tsig.HMAC_SHA256)
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring={KEYNAME: other})
