"""The default lab's site.yaml validates, and its secrets are private."""

from __future__ import annotations

import stat
from collections import Counter
from pathlib import Path

from provisioner.inventory import load_site
from provisioner.inventory.loader import validate_site_file
from provisioner_lab.site import INSTALLER_DIR, LabSpec, write_lab_site


def test_default_lab_site_validates_with_no_problem_but_its_small_size(tmp_path: Path) -> None:
    path = write_lab_site(tmp_path)
    site, problems = validate_site_file(path)
    assert site is not None
    # the lab is deliberately one node per role besides the controllers: validate says what
    # that loses (warnings), and nothing else
    assert [(p.where, p.severity) for p in problems] == [
        ("role network", "warning"),
        ("role storage", "warning"),
        ("role compute", "warning"),
    ]
    assert Counter(site.role_kind(n.role) for n in site.nodes) == {
        "controller": 3,
        "network": 1,
        "storage": 1,
        "compute": 1,
    }
    assert {site.boot_mode_of(n) for n in site.nodes} == {"bios", "uefi"}
    ports = [n.bmc.effective_port for n in site.nodes]
    assert all(n.bmc.address == "127.0.0.1" for n in site.nodes)
    assert len(set(ports)) == len(ports)
    profile = site.profiles[site.defaults.profile or ""]
    assert profile.kernel == f"{INSTALLER_DIR}/vmlinuz"
    assert profile.initrd == f"{INSTALLER_DIR}/initrd.img"
    assert site.network.provisioner.tftp_port == 69
    assert "Network mode: netns" in path.read_text()


def test_secrets_are_mode_0600_kept_across_rewrites_and_not_in_site_yaml(tmp_path: Path) -> None:
    path = write_lab_site(tmp_path)
    secrets = sorted((tmp_path / "secrets").iterdir())
    assert [s.name for s in secrets] == [
        "bmc-password", "lab-ssh-key", "lab-ssh-key.pub", "root-password.hash", "tsig.secret",
    ]  # fmt: skip
    before = {s.name: s.read_text() for s in secrets}
    for secret in secrets:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600 or secret.suffix == ".pub"
    assert before["root-password.hash"].startswith("$6$")
    text = path.read_text()
    private = {k: v for k, v in before.items() if not k.endswith(".pub")}
    assert all(value.strip() not in text for value in private.values())
    # root's authorized key on every node: the lab's public key
    assert load_site(path).defaults.ssh_keys == [before["lab-ssh-key.pub"].strip()]
    write_lab_site(tmp_path)
    assert {s.name: s.read_text() for s in sorted((tmp_path / "secrets").iterdir())} == before
    site = load_site(path)
    assert site.nodes[0].bmc.password.resolve(site.base_dir, "t").get_secret_value() == (
        before["bmc-password"].strip()
    )


def test_user_mode_lab_uses_loopback_ports(tmp_path: Path) -> None:
    path = write_lab_site(tmp_path, LabSpec(mode="user", bmc_base_port=7100, http_port=18080))
    site = load_site(path)
    assert site.network.provisioner.tftp_port == 6969
    assert site.network.provisioner.interface is None
    assert str(site.dns.server) == "127.0.0.1" and site.dns.port == 5353
    assert [n.bmc.port for n in site.nodes] == list(range(7100, 7106))
    assert "Network mode: user" in path.read_text()
    # every node reaches serve through slirp, from 127.0.0.1: its install script must not
    # be tied to the node's own address there (it is in netns mode)
    assert site.network.boot_addresses == "dynamic"
    assert load_site(write_lab_site(tmp_path / "ns", LabSpec())).network.boot_addresses == "fixed"


def test_lab_profile_installs_an_image_and_controllers_add_their_ha_packages(
    tmp_path: Path,
) -> None:
    site = load_site(write_lab_site(tmp_path))
    profile = site.profiles["lab"]
    assert profile.repo is None and profile.image is not None
    assert {"linux-image-cloud-amd64", "openssh-server", "mdadm"} <= set(profile.image.packages)
    controller = site.roles["controller"].image_packages
    assert {"haproxy", "mariadb-server", "galera-4", "rabbitmq-server", "pacemaker"} <= set(
        controller
    )
    assert all(not site.roles[r].image_packages for r in ("network", "storage", "compute"))
