"""Image plans: the cache key follows the inputs (packages, suite, sources), not the names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.errors import ConfigError
from provisioner.install.images import (
    CUSTOMIZE_HOOKS,
    ImageStore,
    image_targets,
    plan_image,
)
from provisioner.inventory import Site, load_site

SOURCES = (("/etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://m/debian\n"),)


def sources() -> tuple[tuple[str, str], ...]:
    return SOURCES


def with_image(site: Site, **image: Any) -> Site:
    """The example site with an image profile 'deb12' used by every node."""
    data = site.model_dump(mode="json", exclude_none=True)
    data["profiles"]["deb12"] = {"kernel": "k", "initrd": "i", "image": image}
    data["defaults"]["profile"] = "deb12"
    data["roles"]["controller"]["image_packages"] = ["haproxy", "keepalived"]
    return Site.model_validate(data)


@pytest.fixture
def site(site_dir: Path) -> Site:
    return with_image(load_site(site_dir / "site.yaml"))


def test_roles_with_the_same_packages_share_an_image(site: Site) -> None:
    compute = plan_image(site, "deb12", "compute", sources)
    storage = plan_image(site, "deb12", "storage", sources)
    controller = plan_image(site, "deb12", "controller", sources)
    assert compute.key == storage.key
    assert controller.key != compute.key
    assert {"haproxy", "keepalived"} <= set(controller.packages)
    assert "linux-image-cloud-amd64" in compute.packages


def test_the_key_follows_every_input(site: Site) -> None:
    base = plan_image(site, "deb12", "compute", sources).key
    other_suite = with_image(site, suite="trixie")
    assert plan_image(other_suite, "deb12", "compute", sources).key != base
    other_mirror = with_image(site, mirror="http://mirror.example/debian")
    assert plan_image(other_mirror, "deb12", "compute", sources).key != base

    def edited() -> tuple[tuple[str, str], ...]:
        return ((SOURCES[0][0], SOURCES[0][1] + "Suites: bookworm\n"),)

    assert plan_image(site, "deb12", "compute", edited).key != base
    # the order packages are listed in is not an input
    shuffled = with_image(site, packages=list(reversed(site.profiles["deb12"].image.packages)))  # type: ignore[union-attr]
    assert plan_image(shuffled, "deb12", "compute", sources).key == base


def test_argv_is_mmdebstrap_with_the_hooks_and_host_sources(site: Site) -> None:
    plan = plan_image(site, "deb12", "controller", sources)
    argv = plan.argv(Path("/out/image.tar.zst"))
    assert argv[0] == "mmdebstrap"
    assert "--variant=minbase" in argv
    include = next(a for a in argv if a.startswith("--include="))
    assert "haproxy" in include.split("=", 1)[1].split(",")
    assert [a for a in argv if a.startswith("--customize-hook=")] == [
        f"--customize-hook={h}" for h in CUSTOMIZE_HOOKS
    ]
    assert argv[-3:] == ["bookworm", "/out/image.tar.zst", SOURCES[0][0]]


def test_a_package_profile_has_no_image(site: Site) -> None:
    with pytest.raises(ConfigError, match="profile rocky9: image: not set"):
        plan_image(site, "rocky9", "compute", sources)


def test_targets_are_the_roles_of_the_nodes(site: Site) -> None:
    roles = {n.role for n in site.nodes}
    assert image_targets(site, None, None) == sorted(("deb12", r) for r in roles)
    assert image_targets(site, "deb12", "compute") == [("deb12", "compute")]


def test_an_empty_store_lists_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    assert store.list() == []
    assert store.get("0" * 24) is None


def test_a_profile_needs_one_source(site: Site) -> None:
    data = site.model_dump(mode="json", exclude_none=True)
    data["profiles"]["both"] = {"kernel": "k", "initrd": "i", "repo": "http://r/", "image": {}}
    with pytest.raises(ValueError, match="both given"):
        Site.model_validate(data)
    data["profiles"]["both"] = {"kernel": "k", "initrd": "i"}
    with pytest.raises(ValueError, match="repo: or image: required"):
        Site.model_validate(data)
