"""Which hooks a node runs, in which order, and how a site's copies override them."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioner.inventory import load_site
from provisioner.pipeline.hooks import hook_environment, plan_hooks


def write_hook(folder: Path, name: str, executable: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("#!/bin/sh\nexit 0\n")
    (folder / name).chmod(0o755 if executable else 0o644)


def test_common_first_then_role_folders_in_name_order_site_copies_win(site_dir: Path) -> None:
    data = yaml.safe_load((site_dir / "site.yaml").read_text())
    data["content"] = {"hooks": "mine"}
    data["roles"]["compute"]["hooks"] = ["compute", "gpu"]
    (site_dir / "site.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    mine = site_dir / "mine"
    write_hook(mine / "common", "01-first")
    write_hook(mine / "common", "10-record-context")  # replaces the bundled one
    write_hook(mine / "compute", "50-ha-bundle", executable=False)  # switches it off
    write_hook(mine / "compute", "20-tune")
    write_hook(mine / "gpu", "10-drivers")
    (mine / "compute" / "README.md").write_text("not a hook")

    site = load_site(site_dir / "site.yaml")
    plan = plan_hooks(site, site.node("cmp1"))
    assert [h.name for h in plan] == [
        "common/01-first",
        "common/10-record-context",
        "compute/20-tune",
        "gpu/10-drivers",
    ]
    assert plan[1].path == mine / "common" / "10-record-context"
    # the controllers keep the bundled hooks
    ctl = [h.name for h in plan_hooks(site, site.node("ctl1"))]
    assert ctl == ["common/01-first", "common/10-record-context", "controller/50-ha-bundle"]


def test_environment_mirrors_the_context() -> None:
    context = {
        "node": "net1",
        "fqdn": "net1.example.test",
        "role": "network",
        "role_kind": "network",
        "addresses": {"ip": "192.0.2.14", "macs": ["52:54:00:00:02:0e"]},
        "members": [{"name": "net2", "ip": "192.0.2.15", "fqdn": "x", "state": "active"}],
        "vips": [{"name": "api", "address": "192.0.2.10", "role": "controller"}],
        "first_deployment": False,
        "reprovision": True,
        "site": "/s/site.yaml",
        "state_dir": "/st",
        "bundle_dir": "/st/bundles/net1",
    }
    env = hook_environment(context)
    assert env["PROVISIONER_MEMBERS"] == "net2"
    assert env["PROVISIONER_MEMBER_IPS"] == "192.0.2.15"
    assert env["PROVISIONER_REPROVISION"] == "1"
    assert env["PROVISIONER_FIRST_DEPLOYMENT"] == "0"
    assert env["PROVISIONER_BUNDLE_DIR"] == "/st/bundles/net1"
