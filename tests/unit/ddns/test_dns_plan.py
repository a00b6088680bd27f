"""The change set between the example site and zone contents fed in as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.ddns.plan import ChangeSet, ZoneData, plan
from provisioner.ddns.records import (
    Marker,
    Owner,
    RRset,
    node_publication,
    site_publications,
)
from provisioner.inventory import Site, load_site

FWD, REV = "lab.example.test.", "2.0.192.in-addr.arpa."


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def empty() -> tuple[ZoneData, ZoneData]:
    return ZoneData(FWD), ZoneData(REV)


def applied(zones: tuple[ZoneData, ZoneData], changes: ChangeSet) -> tuple[ZoneData, ZoneData]:
    """What the server holds after the change set (a model of RFC 2136 semantics)."""
    fwd, rev = ZoneData(FWD, dict(zones[0].names)), ZoneData(REV, dict(zones[1].names))
    for change in changes.changes:
        zone = fwd if change.zone == FWD else rev
        records = {t: r for t, r in zone.get(change.name).items() if t not in change.before}
        records.update(change.after)
        if records:
            zone.names[change.name] = records
        else:
            zone.names.pop(change.name, None)
    return fwd, rev


def publish_all(site: Site, zones: tuple[ZoneData, ZoneData]) -> ChangeSet:
    pubs = site_publications(site)
    return plan(site.site.name, *zones, publish=pubs, known=pubs)


def with_ip(site: Site, node: str, ip: str) -> Site:
    nodes = [n.model_copy(update={"ip": ip}) if n.name == node else n for n in site.nodes]
    return site.model_copy(update={"nodes": nodes})


def test_empty_zones_get_every_node_vip_and_alias(site: Site) -> None:
    changes = publish_all(site, empty())
    assert not changes.conflicts
    fwd = {c.name: c.after for c in changes.for_zone(FWD)}
    rev = {c.name: c.after for c in changes.for_zone(REV)}
    assert len(fwd) == 19 and len(rev) == 11  # 10 nodes + api + 8 aliases; 10 nodes + api
    assert fwd["ctl1.lab.example.test."]["A"] == RRset.of(300, "192.0.2.11")
    marker = Marker.parse(next(iter(fwd["ctl1.lab.example.test."]["TXT"].values)))
    assert marker == Marker("example", Owner("node", "ctl1"))
    assert fwd["nova.lab.example.test."] == {"CNAME": RRset.of(300, "api.lab.example.test.")}
    assert rev["10.2.0.192.in-addr.arpa."]["PTR"].values == {"api.lab.example.test."}
    assert all(c.action == "add" for c in changes.changes)


def test_second_run_changes_nothing(site: Site) -> None:
    zones = applied(empty(), publish_all(site, empty()))
    assert publish_all(site, zones).changes == []


def test_new_ip_replaces_a_and_moves_ptr(site: Site) -> None:
    zones = applied(empty(), publish_all(site, empty()))
    moved = with_ip(site, "ctl1", "192.0.2.31")
    changes = plan("example", *zones, publish=[node_publication(moved, moved.node("ctl1"))])
    assert not changes.conflicts
    by_name = {c.name: c for c in changes.changes}
    assert set(by_name) == {
        "ctl1.lab.example.test.",
        "11.2.0.192.in-addr.arpa.",
        "31.2.0.192.in-addr.arpa.",
    }
    assert by_name["ctl1.lab.example.test."].after["A"].values == {"192.0.2.31"}
    assert by_name["11.2.0.192.in-addr.arpa."].action == "delete"
    assert by_name["31.2.0.192.in-addr.arpa."].action == "add"
    _fwd, rev = applied(zones, changes)
    assert "11.2.0.192.in-addr.arpa." not in rev.names


def test_swapping_two_addresses_in_one_plan(site: Site) -> None:
    zones = applied(empty(), publish_all(site, empty()))
    swapped = with_ip(with_ip(site, "ctl1", "192.0.2.12"), "ctl2", "192.0.2.11")
    changes = publish_all(swapped, zones)
    assert not changes.conflicts
    fwd, rev = applied(zones, changes)
    assert rev.values("11.2.0.192.in-addr.arpa.", "PTR") == {"ctl2.lab.example.test."}
    assert rev.values("12.2.0.192.in-addr.arpa.", "PTR") == {"ctl1.lab.example.test."}
    assert publish_all(swapped, (fwd, rev)).changes == []


def test_name_held_by_hand_made_record_is_a_conflict(site: Site) -> None:
    fwd, rev = empty()
    fwd.names["ctl1.lab.example.test."] = {"A": RRset.of(600, "192.0.2.99")}
    changes = publish_all(site, (fwd, rev))
    assert [str(c) for c in changes.conflicts] == [
        "node ctl1: ctl1.lab.example.test. already holds A 192.0.2.99, not published by provisioner"
    ]


def test_same_address_made_by_hand_is_adopted(site: Site) -> None:
    fwd, rev = empty()
    fwd.names["ctl1.lab.example.test."] = {"A": RRset.of(300, "192.0.2.11")}
    changes = publish_all(site, (fwd, rev))
    assert not changes.conflicts
    ctl1 = next(c for c in changes.changes if c.name == "ctl1.lab.example.test.")
    assert set(ctl1.after) == {"A", "TXT"} and set(ctl1.before) == {"A"}


def test_name_of_another_site_is_a_conflict(site: Site) -> None:
    fwd, rev = empty()
    other = Marker("other", Owner("node", "ctl1")).text
    fwd.names["ctl1.lab.example.test."] = {
        "A": RRset.of(300, "192.0.2.11"),
        "TXT": RRset.of(300, other),
    }
    changes = publish_all(site, (fwd, rev))
    assert [str(c) for c in changes.conflicts] == [
        "node ctl1: ctl1.lab.example.test. is already published for node ctl1 of site other"
    ]


def test_address_and_ptr_of_another_host_conflict_naming_both(site: Site) -> None:
    fwd, rev = empty()
    fwd.names["intruder.lab.example.test."] = {"A": RRset.of(300, "192.0.2.20")}
    rev.names["20.2.0.192.in-addr.arpa."] = {"PTR": RRset.of(300, "intruder.lab.example.test.")}
    changes = plan("example", fwd, rev, publish=[node_publication(site, site.node("cmp3"))])
    assert sorted(str(c) for c in changes.conflicts) == [
        "node cmp3: 20.2.0.192.in-addr.arpa. (address 192.0.2.20) already points to "
        "intruder.lab.example.test. (not published by provisioner)",
        "node cmp3: cmp3.lab.example.test. wants 192.0.2.20, which is already held by "
        "intruder.lab.example.test. (not published by provisioner)",
    ]


def test_taking_an_address_another_node_still_holds_is_a_conflict(site: Site) -> None:
    zones = applied(empty(), publish_all(site, empty()))
    moved = with_ip(site, "cmp2", "192.0.2.20")
    changes = plan("example", *zones, publish=[node_publication(moved, moved.node("cmp2"))])
    assert any(
        "already held by cmp3.lab.example.test. (node cmp3)" in str(c) for c in changes.conflicts
    )


def test_alias_over_a_foreign_cname_is_a_conflict(site: Site) -> None:
    fwd, rev = empty()
    fwd.names["nova.lab.example.test."] = {"CNAME": RRset.of(300, "elsewhere.example.org.")}
    changes = publish_all(site, (fwd, rev))
    assert [str(c) for c in changes.conflicts] == [
        "VIP api of role controller: nova.lab.example.test. already holds an alias of "
        "elsewhere.example.org., not this site's alias"
    ]


def test_retire_removes_the_name_and_its_ptr_but_not_a_ptr_someone_else_wrote(
    site: Site,
) -> None:
    fwd, rev = applied(empty(), publish_all(site, empty()))
    # names cmp3 but at an address cmp3 never had: not provably ours (issue 18)
    rev.names["99.2.0.192.in-addr.arpa."] = {"PTR": RRset.of(300, "cmp3.lab.example.test.")}
    changes = plan("example", fwd, rev, retire=[(Owner("node", "cmp3"), "cmp3.lab.example.test.")])
    assert not changes.conflicts
    assert sorted((c.name, c.action) for c in changes.changes) == [
        ("20.2.0.192.in-addr.arpa.", "delete"),
        ("cmp3.lab.example.test.", "delete"),
    ]
    after = applied((fwd, rev), changes)
    again = plan("example", *after, retire=[(Owner("node", "cmp3"), "cmp3.lab.example.test.")])
    assert again.changes == [] and again.conflicts == []


def test_retire_leaves_a_foreign_name_alone(site: Site) -> None:
    fwd, rev = empty()
    fwd.names["cmp3.lab.example.test."] = {"A": RRset.of(300, "192.0.2.20")}
    changes = plan("example", fwd, rev, retire=[(Owner("node", "cmp3"), "cmp3.lab.example.test.")])
    assert changes.changes == []
    assert [c.name for c in changes.conflicts] == ["cmp3.lab.example.test."]


def test_orphans_of_this_site_are_listed(site: Site) -> None:
    fwd, rev = applied(empty(), publish_all(site, empty()))
    smaller = site.model_copy(update={"nodes": site.nodes[:-1]})
    assert publish_all(smaller, (fwd, rev)).orphans == ["cmp3.lab.example.test."]


def test_change_lines_show_old_and_new(site: Site) -> None:
    zones = applied(empty(), publish_all(site, empty()))
    moved = with_ip(site, "ctl1", "192.0.2.31")
    changes = plan("example", *zones, publish=[node_publication(moved, moved.node("ctl1"))])
    lines = [line for c in changes.changes for line in c.lines()]
    assert "- ctl1.lab.example.test. 300 A 192.0.2.11" in lines
    assert "+ ctl1.lab.example.test. 300 A 192.0.2.31" in lines
    assert "- 11.2.0.192.in-addr.arpa. 300 PTR ctl1.lab.example.test." in lines


def test_a_foreign_ptr_naming_one_of_our_nodes_is_a_conflict_not_deleted(site: Site) -> None:
    """Issue 18: someone else's PTR at an address the site now assigns, to a name of ours."""
    fwd, rev = applied(empty(), publish_all(site, empty()))
    rev.names["20.2.0.192.in-addr.arpa."] = {"PTR": RRset.of(300, "ctl1.lab.example.test.")}
    changes = plan("example", fwd, rev, publish=[node_publication(site, site.node("cmp3"))])
    assert [str(c) for c in changes.conflicts] == [
        "node cmp3: 20.2.0.192.in-addr.arpa. (address 192.0.2.20) already points to "
        "ctl1.lab.example.test. (not published by provisioner)"
    ]
    assert all(c.name != "20.2.0.192.in-addr.arpa." for c in changes.changes)
