"""Unpublishing or decommissioning a node next to records someone else wrote (issue 18).

A PTR naming the node at another address, or another host's PTR at the node's
address, carries no proof that this site wrote it: it is never deleted, and the
command says which record it left, naming the node, and exits 5 (partial: the
node's own records are gone). Real BIND, changed behind our back with nsupdate,
checked with dig.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bindlab import DOMAIN, REVERSE, Lab, make_lab

from provisioner.ddns.publish import publish_node, publish_site
from provisioner.errors import EXIT_PARTIAL

pytestmark = pytest.mark.functional


@pytest.fixture
def lab(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from make_lab(site_dir, tmp_path / "bind")


def test_unpublish_says_which_foreign_ptrs_it_left_and_exits_partial(lab: Lab) -> None:
    site = lab.site()
    publish_node(site, site.node("cmp3"))
    lab.nsupdate(REVERSE, f"update add 99.{REVERSE} 600 PTR cmp3.{DOMAIN}.")  # to our name
    lab.nsupdate(REVERSE, f"update add 20.{REVERSE} 600 PTR intruder.{DOMAIN}.")  # our address

    done = lab.cli("dns", "unpublish", "cmp3")
    assert done.returncode == EXIT_PARTIAL, done.stdout + done.stderr
    assert "cmp3: 2 DNS change(s)" in done.stdout  # the name (A + marker), our PTR value
    assert (
        f"LEFT node cmp3: 99.{REVERSE}. (address 192.0.2.99) PTR cmp3.{DOMAIN}. left in place: "
        "not published by provisioner" in done.stdout
    )
    assert (
        f"LEFT node cmp3: 20.{REVERSE}. (address 192.0.2.20) PTR intruder.{DOMAIN}. left in "
        "place" in done.stdout
    )
    assert "2 record(s) not published by provisioner left in place" in done.stdout
    # ours gone, theirs untouched
    assert lab.dig(f"cmp3.{DOMAIN}", "ANY") == []
    assert lab.dig("-x", "192.0.2.20") == [f"intruder.{DOMAIN}."]
    assert lab.dig("-x", "192.0.2.99") == [f"cmp3.{DOMAIN}."]

    # again: nothing of ours left to remove, the PTR to the node's name still reported
    again = lab.cli("dns", "unpublish", "cmp3")
    assert again.returncode == EXIT_PARTIAL, again.stdout + again.stderr
    assert "cmp3: 0 DNS change(s)" in again.stdout
    assert f"99.{REVERSE}. (address 192.0.2.99) PTR cmp3.{DOMAIN}. left in place" in again.stdout

    # once the other admin cleans up, unpublish is plain success
    lab.nsupdate(REVERSE, f"update delete 99.{REVERSE} PTR")
    clean = lab.cli("dns", "unpublish", "cmp3")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "LEFT" not in clean.stdout


def test_plan_lists_what_a_prune_would_leave(lab: Lab) -> None:
    publish_site(lab.site())
    lab.nsupdate(REVERSE, f"update add 99.{REVERSE} 600 PTR cmp3.{DOMAIN}.")
    path = lab.site_dir / "site.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  - name: cmp3")])  # cmp3 leaves the site
    planned = lab.cli("dns", "plan", "--prune", "--json")
    assert planned.returncode == 0, planned.stderr
    left = json.loads(planned.stdout)["left"]
    assert [(e["owner"], e["name"]) for e in left] == [("node cmp3", f"99.{REVERSE}.")]


def test_decommission_finishes_and_reports_the_foreign_ptr(lab: Lab) -> None:
    path = lab.site_dir / "site.yaml"
    text = path.read_text()
    block = text[text.index("  - name: cmp3") :]
    path.write_text(text.replace(block, block.replace("driver: ipmi", "driver: fake", 1)))
    site = lab.site()
    publish_node(site, site.node("cmp3"))
    lab.nsupdate(REVERSE, f"update add 99.{REVERSE} 600 PTR cmp3.{DOMAIN}.")
    assert lab.cli("enroll", "cmp3").returncode == 0

    gone = lab.cli("decommission", "cmp3", "--yes", "--json")
    assert gone.returncode == EXIT_PARTIAL, gone.stdout + gone.stderr
    (result,) = json.loads(gone.stdout)
    assert result["state"] == "decommissioned"
    assert (
        f"99.{REVERSE}. (address 192.0.2.99) PTR cmp3.{DOMAIN}. left in place" in (result["reason"])
    )
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == []
    assert lab.dig("-x", "192.0.2.20") == []
    assert lab.dig("-x", "192.0.2.99") == [f"cmp3.{DOMAIN}."]
    events = json.loads(lab.cli("events", "cmp3", "--json").stdout)
    assert any(
        e["message"].startswith("DNS record left in place: node cmp3: 99.") for e in events
    ), events
