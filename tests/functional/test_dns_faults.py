"""What goes wrong against a real BIND: conflicts, a wrong key, a server down then up."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bindlab import DOMAIN, REVERSE, Lab, make_lab

from provisioner import programs
from provisioner.ddns.client import DnsServer
from provisioner.ddns.plan import ChangeSet, NameChange
from provisioner.ddns.publish import (
    apply_plan,
    make_plan,
    publish_node,
    publish_site,
    site_scope,
    unpublish_node,
)
from provisioner.ddns.records import RRset
from provisioner.ddns.update import apply_changes
from provisioner.errors import EXIT_CONFLICT, DnsConflict, DnsRejected, DnsUnreachable

pytestmark = pytest.mark.functional


@pytest.fixture
def lab(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from make_lab(site_dir, tmp_path / "bind")


@pytest.fixture
def stopped_lab(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from make_lab(site_dir, tmp_path / "bind", start=False)


def test_name_held_by_another_host_is_a_conflict_and_nothing_changes(lab: Lab) -> None:
    lab.nsupdate(DOMAIN, f"update add ctl1.{DOMAIN} 600 A 192.0.2.99")
    applied = lab.cli("dns", "apply")
    assert applied.returncode == EXIT_CONFLICT
    assert f"node ctl1: ctl1.{DOMAIN}. already holds A 192.0.2.99" in applied.stderr
    assert "not published by provisioner" in applied.stderr
    assert "nothing was changed" in applied.stderr
    assert lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.99"]
    assert lab.dig(f"cmp1.{DOMAIN}", "A") == []
    planned = lab.cli("dns", "plan")
    assert planned.returncode == EXIT_CONFLICT
    assert f"CONFLICT node ctl1: ctl1.{DOMAIN}. already holds A 192.0.2.99" in planned.stdout


def test_address_held_by_another_host_is_a_conflict_naming_both(lab: Lab) -> None:
    lab.nsupdate(DOMAIN, f"update add intruder.{DOMAIN} 600 A 192.0.2.20")
    lab.nsupdate(REVERSE, f"update add 20.{REVERSE} 600 PTR intruder.{DOMAIN}.")
    site = lab.site()
    with pytest.raises(DnsConflict) as caught:
        publish_node(site, site.node("cmp3"))
    message = str(caught.value)
    assert (
        f"node cmp3: cmp3.{DOMAIN}. wants 192.0.2.20, which is already held by "
        f"intruder.{DOMAIN}. (not published by provisioner)" in message
    )
    assert f"node cmp3: 20.{REVERSE}. (address 192.0.2.20) already points to intruder" in message
    assert lab.dig("-x", "192.0.2.20") == [f"intruder.{DOMAIN}."]
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == []
    publish_node(site, site.node("cmp2"))  # the other nodes are not blocked
    assert lab.dig(f"cmp2.{DOMAIN}", "A") == ["192.0.2.19"]


def test_foreign_ptr_at_an_address_the_site_assigns_is_a_conflict_not_deleted(lab: Lab) -> None:
    """Issue 18: a PTR someone else wrote (to one of the site's names) was deleted by apply."""
    lab.nsupdate(REVERSE, f"update add 20.{REVERSE} 600 PTR ctl1.{DOMAIN}.")
    applied = lab.cli("dns", "apply")
    assert applied.returncode == EXIT_CONFLICT, applied.stderr
    assert (
        f"node cmp3: 20.{REVERSE}. (address 192.0.2.20) already points to "
        f"ctl1.{DOMAIN}. (not published by provisioner)" in applied.stderr
    )
    assert "nothing was changed" in applied.stderr
    assert lab.dig("-x", "192.0.2.20") == [f"ctl1.{DOMAIN}."]
    # once ctl1 is published by the site, the PTR is still not provably ours
    site = lab.site()
    publish_node(site, site.node("ctl1"))
    assert lab.cli("dns", "apply").returncode == EXIT_CONFLICT
    assert lab.dig("-x", "192.0.2.20") == [f"ctl1.{DOMAIN}."]
    assert lab.dig("-x", "192.0.2.11") == [f"ctl1.{DOMAIN}."]


def test_unpublishing_a_node_leaves_a_foreign_ptr_to_it_alone(lab: Lab) -> None:
    site = lab.site()
    publish_node(site, site.node("cmp3"))
    lab.nsupdate(REVERSE, f"update add 99.{REVERSE} 600 PTR cmp3.{DOMAIN}.")
    unpublish_node(site, "cmp3")
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == []
    assert lab.dig("-x", "192.0.2.20") == []  # ours: gone with the name
    assert lab.dig("-x", "192.0.2.99") == [f"cmp3.{DOMAIN}."]  # theirs: left


def test_node_moving_onto_another_nodes_address_is_a_conflict(lab: Lab) -> None:
    publish_site(lab.site())
    path = lab.site_dir / "site.yaml"
    path.write_text(path.read_text().replace("ip: 192.0.2.20\n", "ip: 192.0.2.31\n"))
    path.write_text(path.read_text().replace("ip: 192.0.2.19\n", "ip: 192.0.2.20\n"))
    site = lab.site()
    with pytest.raises(DnsConflict) as caught:
        publish_node(site, site.node("cmp2"))  # cmp3 still holds .20 on the server
    assert f"already held by cmp3.{DOMAIN}. (node cmp3)" in str(caught.value)
    publish_node(site, site.node("cmp3"))  # cmp3 moves away first: now cmp2 may take it
    publish_node(site, site.node("cmp2"))
    assert lab.dig("-x", "192.0.2.20") == [f"cmp2.{DOMAIN}."]
    assert lab.dig("-x", "192.0.2.19") == []


def test_alias_name_taken_by_a_host_is_a_conflict(lab: Lab) -> None:
    lab.nsupdate(DOMAIN, f"update add keystone.{DOMAIN} 600 A 192.0.2.77")
    applied = lab.cli("dns", "apply")
    assert applied.returncode == EXIT_CONFLICT
    assert f"VIP api of role controller: keystone.{DOMAIN}. already holds A 192.0.2.77" in (
        applied.stderr
    )


def test_wrong_tsig_key_is_a_clear_error_without_the_secret(lab: Lab) -> None:
    secret_file = lab.site_dir / "secrets" / "tsig.secret"
    good = secret_file.read_text().strip()
    wrong = "c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ="
    secret_file.write_text(wrong + "\n")
    for command in (["dns", "plan"], ["dns", "apply"]):
        result = lab.cli(*command)
        assert result.returncode == 1, result.stdout
        assert "TSIG key 'provisioner-key' was rejected (BADSIG)" in result.stderr
        assert "check dns.tsig.secret" in result.stderr
        assert "Traceback" not in result.stderr
        for secret in (good, wrong):
            assert secret not in result.stdout + result.stderr
    log = (lab.site_dir / "state").rglob("*.log")
    for path in log:
        assert good not in path.read_text() and wrong not in path.read_text()
    assert lab.dig(f"ctl1.{DOMAIN}", "A") == []


def test_update_refused_by_policy_names_the_rcode(site_dir: Path, tmp_path: Path) -> None:
    labs = make_lab(site_dir, tmp_path / "bind", start=False)
    lab = next(labs)
    try:
        conf = lab.config.conf.read_text()
        forward = conf.index(f'zone "{DOMAIN}"')
        conf = conf[:forward] + conf[forward:].replace(
            'update-policy { grant "provisioner-key" zonesub ANY; };',
            'update-policy { grant "provisioner-key" zonesub TXT; };',
            1,
        )
        lab.config.conf.write_text(conf)
        lab.server.start(timeout=60)
        applied = lab.cli("dns", "apply")
        assert applied.returncode == 1
        assert f"update of zone {DOMAIN}. at 127.0.0.1:{lab.port} failed with REFUSED" in (
            applied.stderr
        )
        assert "update-policy" in applied.stderr
    finally:
        labs.close()


def test_server_down_fails_after_bounded_retries(stopped_lab: Lab) -> None:
    started = time.monotonic()
    with pytest.raises(DnsUnreachable) as caught:
        publish_site(stopped_lab.site(), retry_for=1.5)
    elapsed = time.monotonic() - started
    assert f"DNS server 127.0.0.1:{stopped_lab.port} unreachable" in str(caught.value)
    assert elapsed < 30
    result = stopped_lab.cli("dns", "apply", "--retry-for", "1")
    assert result.returncode == 1
    assert "unreachable after" in result.stderr and "Traceback" not in result.stderr


def test_server_down_then_up_retries_until_it_answers(stopped_lab: Lab) -> None:
    starter = threading.Timer(2.0, stopped_lab.server.start, kwargs={"timeout": 60})
    starter.start()
    try:
        report = publish_site(stopped_lab.site(), retry_for=90)
    finally:
        starter.join()
    assert report.changes == 30
    assert stopped_lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.11"]
    assert stopped_lab.dig("-x", "192.0.2.20") == [f"cmp3.{DOMAIN}."]


def test_export_gives_zone_files_bind_accepts(stopped_lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "zones"
    result = stopped_lab.cli("dns", "export", "--out", str(out), "--serial", "2026112501")
    assert result.returncode == 0, result.stderr
    forward, reverse = out / f"{DOMAIN}.db", out / f"{REVERSE}.db"
    for zone, path in ((DOMAIN, forward), (REVERSE, reverse)):
        check = subprocess.run(
            [programs.path("named-checkzone"), zone, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "loaded serial 2026112501" in check.stdout
    text = forward.read_text()
    assert f"ctl1.{DOMAIN}.\t300\tIN\tA\t192.0.2.11" in text
    assert f"keystone.{DOMAIN}.\t300\tIN\tCNAME\tapi.{DOMAIN}." in text
    assert "provisioner site=" not in text
    assert f"20.{REVERSE}.\t300\tIN\tPTR\tcmp3.{DOMAIN}." in reverse.read_text()


def test_unknown_key_name_is_badkey(lab: Lab) -> None:
    path = lab.site_dir / "site.yaml"
    path.write_text(path.read_text().replace("name: provisioner-key", "name: someone-else"))
    result = lab.cli("dns", "apply")
    assert result.returncode == 1
    assert "the server does not know TSIG key 'someone-else' (BADKEY)" in result.stderr


def test_without_zone_transfers_names_are_read_one_by_one(site_dir: Path, tmp_path: Path) -> None:
    labs = make_lab(site_dir, tmp_path / "bind", start=False)
    lab = next(labs)
    try:
        conf = lab.config.conf.read_text()
        lab.config.conf.write_text(
            conf.replace('allow-transfer { key "provisioner-key"; };', "allow-transfer { none; };")
        )
        lab.server.start(timeout=60)
        site = lab.site()
        publish_site(site)
        assert "Transfer failed" in lab.axfr(DOMAIN)  # really no AXFR
        assert lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.11"]
        path = lab.site_dir / "site.yaml"
        path.write_text(path.read_text().replace("ip: 192.0.2.11\n", "ip: 192.0.2.31\n"))
        site = lab.site()
        assert publish_node(site, site.node("ctl1")).changes == 3
        assert lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.31"]
        assert lab.dig("-x", "192.0.2.31") == [f"ctl1.{DOMAIN}."]
        assert lab.dig("-x", "192.0.2.11") == []
        assert publish_node(site, site.node("ctl1")).changes == 0
        lab.nsupdate(REVERSE, f"update add 20.{REVERSE} 600 PTR intruder.{DOMAIN}.")
        lab.nsupdate(DOMAIN, f"update delete cmp3.{DOMAIN}")
        with pytest.raises(DnsConflict, match="already points to intruder"):
            publish_node(site, site.node("cmp3"))
    finally:
        labs.close()


def test_other_tsig_algorithm_from_the_site(site_dir: Path, tmp_path: Path) -> None:
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace("algorithm: hmac-sha256", "algorithm: hmac-sha512"))
    labs = make_lab(site_dir, tmp_path / "bind")
    lab = next(labs)
    try:
        assert "algorithm hmac-sha512;" in (lab.config.workdir / "tsig.key").read_text()
        assert publish_site(lab.site()).changes == 30
        assert lab.dig(f"net2.{DOMAIN}", "A") == ["192.0.2.15"]
        # the client and the server disagreeing on the algorithm is an auth error
        path.write_text(path.read_text().replace("algorithm: hmac-sha512", "algorithm: hmac-sha1"))
        result = lab.cli("dns", "plan")
        assert result.returncode == 1
        assert "does not know TSIG key 'provisioner-key' (BADKEY)" in result.stderr
    finally:
        labs.close()


def test_lab_command_writes_a_config_bind_accepts(stopped_lab: Lab, tmp_path: Path) -> None:
    workdir = tmp_path / "labdns"
    result = stopped_lab.cli("dns", "lab", "--workdir", str(workdir), "--port", "5399")
    assert result.returncode == 0, result.stderr
    assert f"named -g -c {workdir / 'named.conf'} -n 1" in result.stdout
    assert "note: site.yaml sends updates to 127.0.0.1:" in result.stdout
    check = subprocess.run(
        [programs.path("named-checkconf"), "-z", str(workdir / "named.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert oct((workdir / "tsig.key").stat().st_mode & 0o777) == "0o600"


def test_update_for_a_zone_the_server_does_not_serve_is_notauth(lab: Lab) -> None:
    change = NameChange(
        "elsewhere.test.",
        "host.elsewhere.test.",
        "node ctl1",
        {},
        {"A": RRset.of(300, "192.0.2.11")},
    )
    server = DnsServer.from_site(lab.site())
    with pytest.raises(DnsRejected) as caught:
        apply_changes(server, ChangeSet([change]), retry_for=0)
    assert caught.value.rcode == "NOTAUTH"
    assert str(caught.value).startswith(
        f"node ctl1: update of zone elsewhere.test. at 127.0.0.1:{lab.port} failed with NOTAUTH"
    )


def test_record_added_between_plan_and_apply_is_never_overwritten(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisioner.ddns.publish")
    site = lab.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site), retry_for=0)
    assert not planned.changes.conflicts
    lab.nsupdate(REVERSE, f"update add 20.{REVERSE} 600 PTR intruder.{DOMAIN}.")
    with pytest.raises(DnsConflict) as caught:
        apply_plan(site, server, planned, retry_for=0)  # prerequisite fails, re-read, conflict
    assert f"already points to intruder.{DOMAIN}." in str(caught.value)
    assert "zone changed while updating" in caplog.text
    assert lab.dig("-x", "192.0.2.20") == [f"intruder.{DOMAIN}."]
