"""UPDATE messages built from changes, chunking, error mapping and retries (no network)."""

from __future__ import annotations

import base64
from pathlib import Path

import dns.name
import dns.tsig
import dns.update
import pytest

from provisioner.ddns.client import DnsServer, rejected, with_retries
from provisioner.ddns.plan import NameChange
from provisioner.ddns.records import RRset
from provisioner.ddns.update import add_change, chunk_changes, wire_size_bound
from provisioner.errors import DnsChanged, DnsRejected, DnsUnreachable, InventoryInvalid
from provisioner.inventory import load_site

ZONE = "lab.example.test."


def server() -> DnsServer:
    name = dns.name.from_text("k")
    key = dns.tsig.Key(name, base64.b64encode(b"0" * 32).decode(), dns.tsig.HMAC_SHA256)
    return DnsServer("127.0.0.1", 5300, name, dns.tsig.HMAC_SHA256, {name: key})


def text_of(change: NameChange) -> str:
    msg = dns.update.UpdateMessage(change.zone)
    add_change(msg, change)
    return msg.to_text()


def test_new_name_requires_absence_then_adds() -> None:
    change = NameChange(
        ZONE,
        "ctl1.lab.example.test.",
        "node ctl1",
        {},
        {"A": RRset.of(300, "192.0.2.11"), "TXT": RRset.of(300, '"provisioner x"')},
    )
    text = text_of(change)
    prereq, update = text.split(";PREREQ\n")[1].split(";UPDATE\n")
    assert "ctl1.lab.example.test. NONE A" in prereq
    assert "ctl1.lab.example.test. NONE TXT" in prereq
    assert "ctl1.lab.example.test. 300 IN A 192.0.2.11" in update


def test_changed_name_pins_exactly_what_was_read() -> None:
    change = NameChange(
        ZONE,
        "ctl1.lab.example.test.",
        "node ctl1",
        {"A": RRset.of(300, "192.0.2.11"), "TXT": RRset.of(300, '"m"')},
        {"A": RRset.of(300, "192.0.2.31"), "TXT": RRset.of(300, '"m"')},
    )
    prereq, update = text_of(change).split(";PREREQ\n")[1].split(";UPDATE\n")
    assert "ctl1.lab.example.test. 0 IN A 192.0.2.11" in prereq  # value-dependent
    assert 'ctl1.lab.example.test. 0 IN TXT "m"' in prereq
    assert update.splitlines()[:2] == [
        "ctl1.lab.example.test. ANY A",
        "ctl1.lab.example.test. 300 IN A 192.0.2.31",
    ]
    assert "TXT" not in update  # unchanged rrsets are not rewritten


def test_deletion_removes_each_rrset() -> None:
    change = NameChange(
        "2.0.192.in-addr.arpa.",
        "11.2.0.192.in-addr.arpa.",
        "node ctl1",
        {"PTR": RRset.of(300, "ctl1.lab.example.test.")},
        {},
    )
    prereq, update = text_of(change).split(";PREREQ\n")[1].split(";UPDATE\n")
    assert "11.2.0.192.in-addr.arpa. 0 IN PTR ctl1.lab.example.test." in prereq
    assert "11.2.0.192.in-addr.arpa. ANY PTR" in update


def _many(n: int) -> list[NameChange]:
    return [
        NameChange(
            ZONE,
            f"node{i:05d}.lab.example.test.",
            f"node node{i:05d}",
            {},
            {
                "A": RRset.of(300, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"),
                "TXT": RRset.of(300, f'"provisioner site=big owner=node/node{i:05d}"'),
            },
        )
        for i in range(n)
    ]


def test_large_change_sets_are_split_below_64k() -> None:
    changes = _many(3000)
    messages = list(chunk_changes(server(), ZONE, changes))
    assert len(messages) >= 2
    sizes = [len(m.to_wire()) for m in messages]
    assert max(sizes) < 65535
    names = [rrset.name for m in messages for rrset in m.update if rrset.rdtype == 1 and rrset.ttl]
    assert len(names) == 3000


def test_max_names_gives_one_message_per_name() -> None:
    messages = list(chunk_changes(server(), ZONE, _many(5), max_names=1))
    assert len(messages) == 5


def test_rcode_errors_name_the_zone_server_and_rcode() -> None:
    err = rejected("update of zone lab.example.test.", "127.0.0.1:53", "NOTAUTH")
    assert isinstance(err, DnsRejected) and err.rcode == "NOTAUTH"
    assert str(err).startswith(
        "update of zone lab.example.test. at 127.0.0.1:53 failed with NOTAUTH"
    )
    assert isinstance(rejected("x", "y", "NXRRSET"), DnsChanged)


def test_retries_until_the_server_answers() -> None:
    calls: list[int] = []
    delays: list[float] = []

    def action() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return "answer"

    assert with_retries(server(), action, "update", retry_for=60, sleep=delays.append) == "answer"
    assert delays == [0.2, 0.4]


def test_gives_up_when_the_retry_time_is_spent() -> None:
    def action() -> str:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(DnsUnreachable, match=r"update: DNS server 127.0.0.1:5300 unreachable"):
        with_retries(server(), action, "update", retry_for=0)


def test_bad_secret_is_reported_without_its_value(site_dir: Path) -> None:
    """Refused when the site is loaded (validate, issue 18), before any DNS message."""
    (site_dir / "secrets" / "tsig.secret").write_text("not*base64*at*all\n")
    with pytest.raises(InventoryInvalid) as caught:
        load_site(site_dir / "site.yaml")
    shown = "\n".join(str(p) for p in caught.value.problems)
    assert "dns: tsig.secret: file:secrets/tsig.secret does not hold a base64 TSIG secret" in shown
    assert "not*base64" not in shown and "not*base64" not in str(caught.value)


@pytest.mark.parametrize(
    "before,after",
    [
        ({}, {"A": RRset.of(300, "192.0.2.11"), "TXT": RRset.of(300, '"provisioner site=s"')}),
        ({"A": RRset.of(300, "192.0.2.11")}, {"A": RRset.of(60, "192.0.2.31")}),
        ({"PTR": RRset.of(300, "a-long-host-name.lab.example.test.")}, {}),
        ({}, {"CNAME": RRset.of(300, "api.lab.example.test.")}),
    ],
)
def test_size_bound_covers_the_encoded_change(before: dict, after: dict) -> None:
    change = NameChange(ZONE, "some-host.lab.example.test.", "node x", before, after)
    empty = dns.update.UpdateMessage(ZONE)
    msg = dns.update.UpdateMessage(ZONE)
    add_change(msg, change)
    assert len(msg.to_wire()) - len(empty.to_wire()) <= wire_size_bound(change)
