"""Kickstarts of an image profile: liveimg with the built image's URL and sha256 instead of
url and %packages, the same layouts, a first-boot unit in %post; valid for pykickstart."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.errors import ImageError
from provisioner.install.images import IMAGE_FILE, RECORD_FILE, BuiltImage, ImageStore, plan_image
from provisioner.install.kickstart import render_kickstart
from provisioner.inventory import Site, load_site
from tests.unit.install.kshelpers import BASE_URL, SAMPLE_DISKS, expanded, ksvalidator, scripts

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "kickstart"
MIRROR = "http://deb.example.test/debian"  # a fixed mirror: the key does not depend on this host


def image_site(site_dir: Path) -> Site:
    site = load_site(site_dir / "site.yaml")
    data = site.model_dump(mode="json", exclude_none=True)
    data["profiles"]["deb12"] = {"kernel": "k", "initrd": "i", "image": {"mirror": MIRROR}}
    data["defaults"]["profile"] = "deb12"
    data["roles"]["controller"]["image_packages"] = ["haproxy"]
    new = Site.model_validate(data)
    new._base_dir = site.base_dir  # the secrets are relative to site.yaml
    return new


def built_store(site: Site, root: Path) -> ImageStore:
    """A store holding a record for every role's image (the record is what rendering reads)."""
    store = ImageStore(root)
    for role in site.roles:
        plan = plan_image(site, "deb12", role)
        folder = store.folder(plan.key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / IMAGE_FILE).write_bytes(b"not read by rendering")
        record = BuiltImage(
            key=plan.key,
            sha256=f"{len(plan.packages):02d}" + "5e" * 31,
            size=21,
            suite=plan.suite,
            variant=plan.variant,
            packages=list(plan.packages),
            built_at="2026-12-03T00:00:00Z",
            seconds=80.0,
            tool="mmdebstrap 1.3.5",
            names=[f"deb12/{role}"],
        )
        (folder / RECORD_FILE).write_text(json.dumps(asdict(record)))
    return store


@pytest.fixture
def site(site_dir: Path) -> Site:
    return image_site(site_dir)


@pytest.fixture
def store(site: Site, tmp_path: Path) -> ImageStore:
    return built_store(site, tmp_path / "images")


def test_liveimg_kickstarts_pass_ksvalidator(site: Site, store: ImageStore, tmp_path: Path) -> None:
    files = []
    for node in site.nodes:
        text = render_kickstart(site, node, token="t", base_url=BASE_URL, images=store)
        built = store.get(plan_image(site, "deb12", node.role).key)
        assert built is not None
        url = f"{BASE_URL}/images/{built.key}/image.tar.zst"
        assert f"\nliveimg --url={url} --checksum={built.sha256}\n" in text, node.name
        assert "\nurl --url" not in text and "%packages" not in text
        path = tmp_path / f"{node.name}.ks"
        path.write_text(expanded(text, SAMPLE_DISKS))
        files.append(path)
    result = ksvalidator(files, "RHEL9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout.lower()


def test_controllers_get_their_own_image(site: Site, store: ImageStore) -> None:
    ctl = render_kickstart(site, site.node("ctl1"), token="t", base_url=BASE_URL, images=store)
    cmp = render_kickstart(site, site.node("cmp1"), token="t", base_url=BASE_URL, images=store)
    sto = render_kickstart(site, site.node("sto1"), token="t", base_url=BASE_URL, images=store)

    def line(text: str) -> str:
        return next(ln for ln in text.splitlines() if ln.startswith("liveimg "))

    assert line(ctl) != line(cmp)
    assert line(cmp) == line(sto)  # same package set: one image


def test_post_installs_the_first_boot_unit(site: Site, store: ImageStore) -> None:
    text = render_kickstart(site, site.node("ctl1"), token="tk-1", base_url=BASE_URL, images=store)
    post = scripts(text)["post"][0]
    check = subprocess.run(
        [programs.path("bash"), "-n"], input=post, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert "ConditionPathExists=!/var/lib/provisioner/booted" in post
    assert "multi-user.target.wants/provisioner-booted.service" in post
    assert '\\"status\\": \\"booted\\"' in post
    # then the apply unit: after the booted one, once, pulling the bundle with the token
    assert "ConditionPathExists=!/var/lib/provisioner/applied" in post
    assert "multi-user.target.wants/provisioner-apply.service" in post
    assert 'bundle_url="${PROVISIONER_CALLBACK%/callback}/bundle"' in post
    # the token goes to a root-only file; the units themselves hold none
    units = [u.split("\nPROVISIONER_UNIT\n")[0] for u in post.split("<<'PROVISIONER_UNIT'\n")[1:]]
    assert len(units) == 2 and "After=provisioner-booted.service" in units[1]
    for unit in units:
        assert "tk-1" not in unit and "TOKEN" not in unit


def test_an_unbuilt_image_names_the_node_and_the_command(site: Site, tmp_path: Path) -> None:
    with pytest.raises(ImageError) as err:
        render_kickstart(
            site, site.node("cmp1"), token="t", base_url=BASE_URL, images=ImageStore(tmp_path)
        )
    assert "node cmp1: profile deb12" in str(err.value)
    assert "provisioner image build --profile deb12 --role compute" in str(err.value)


def test_golden_liveimg_kickstart(site: Site, store: ImageStore) -> None:
    """Review changes here; regenerate with UPDATE_GOLDEN=1."""
    text = render_kickstart(
        site, site.node("ctl1"), token="GOLDEN-ctl1", base_url=BASE_URL, images=store
    )
    golden = GOLDEN / "ctl1-liveimg.ks"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
