"""Preseeds of the example site: debconf accepts them, their scripts parse, golden per role."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.install.preseed import render_preseed
from provisioner.inventory import Site, load_site
from tests.unit.install.kshelpers import BASE_URL, parse_preseed

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden" / "preseed"


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


@pytest.fixture
def preseeds(site: Site) -> dict[str, str]:
    return {
        n.name: render_preseed(site, n, token=f"TOKEN-{n.name}", base_url=BASE_URL)
        for n in site.nodes
    }


def test_debconf_accepts_every_preseed(preseeds: dict[str, str], tmp_path: Path) -> None:
    for name, text in preseeds.items():
        path = tmp_path / f"{name}.cfg"
        path.write_text(text)
        result = subprocess.run(
            [programs.path("debconf-set-selections"), "--checkonly", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and result.stderr == "", f"{name}: {result.stderr}"
        answers = parse_preseed(text)
        assert answers["passwd/root-password-crypted"][0] == "password"
        assert answers["netcfg/get_hostname"] == ("string", name)


def test_embedded_scripts_parse_in_busybox_and_dash(preseeds: dict[str, str]) -> None:
    for name, text in preseeds.items():
        answers = parse_preseed(text)
        for question in ("partman/early_command", "preseed/late_command"):
            command = answers[question][1]
            assert command.startswith("printf '%s\\n' ") and " && sh /tmp/provisioner-" in command
            for shell in ([programs.path("busybox"), "sh"], [programs.path("dash")]):
                check = subprocess.run([*shell, "-n", "-c", command], capture_output=True)
                assert check.returncode == 0, f"{name} {question}: {check.stderr!r}"
            script = subprocess.run(
                [programs.path("sh"), "-c", command.rsplit(" > /tmp/", 1)[0]],
                capture_output=True,
                text=True,
            ).stdout
            check = subprocess.run(
                [programs.path("busybox"), "sh", "-n"], input=script.encode(), capture_output=True
            )
            assert check.returncode == 0, f"{name} {question} script: {check.stderr!r}"
            assert f"PROVISIONER_TOKEN=TOKEN-{name}\n" in script


def test_partitioning_follows_the_plan(preseeds: dict[str, str]) -> None:
    ctl = parse_preseed(preseeds["ctl1"])
    assert ctl["partman-auto/method"] == ("string", "raid")
    recipe = ctl["partman-auto/expert_recipe"][1]
    assert "lv_name{ mysql }" in recipe and "mountpoint{ /var/lib/rabbitmq }" in recipe
    assert "method{ efi }" in recipe
    net2 = parse_preseed(preseeds["net2"])  # legacy BIOS
    assert net2["partman-auto/method"] == ("string", "lvm")
    assert "method{ biosgrub }" in net2["partman-auto/expert_recipe"][1]
    sto = parse_preseed(preseeds["sto1"])
    assert "vgcreate cinder-volumes" in sto["preseed/late_command"][1]


def test_tokens_stay_with_their_node(preseeds: dict[str, str]) -> None:
    for name, text in preseeds.items():
        for other in preseeds:
            assert (f"TOKEN-{other}" in text) == (other == name)


@pytest.mark.parametrize("name", ("ctl1", "sto1"))
def test_golden_preseed(site: Site, name: str) -> None:
    text = render_preseed(site, site.node(name), token=f"GOLDEN-{name}", base_url=BASE_URL)
    golden = GOLDEN / f"{name}.cfg"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
