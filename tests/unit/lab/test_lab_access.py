"""`lab ssh`: where each node's sshd is reached, and the ssh command that gets there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner_lab.access import ssh_argv, ssh_target
from provisioner_lab.network import plan_network
from provisioner_lab.orchestrate import LabError, LabOptions, LabPaths, lab_spec, vbmc_config
from provisioner_lab.procs import LabRecord
from provisioner_lab.site import write_lab_site


def _lab(tmp_path: Path, mode: str) -> tuple[LabPaths, LabRecord]:
    paths = LabPaths(tmp_path)
    spec = lab_spec(LabOptions(tmp_path, small=True, ssh_base_port=4000), mode)  # type: ignore[arg-type]
    write_lab_site(tmp_path, spec)
    plan = plan_network([n.name for n in spec.nodes], mode, namespace="pv9b-t")  # type: ignore[arg-type]
    paths.vbmc_config.write_text(yaml.safe_dump(vbmc_config(paths, spec, plan)))
    record = LabRecord(mode, "pv9b-t", "test", [n.name for n in spec.nodes])  # type: ignore[arg-type]
    return paths, record


def test_netns_mode_reaches_the_nodes_address_inside_the_namespace(tmp_path: Path) -> None:
    paths, record = _lab(tmp_path, "netns")
    target = ssh_target(paths, record, "ctl2")
    assert (target.host, target.port) == ("192.0.2.12", 22)
    argv = ssh_argv(paths, target, ["hostname", "-f"])
    assert argv[:4] == [argv[0], "netns", "exec", "pv9b-t"] and argv[0].endswith("/ip")
    assert argv[-4:] == ["--", "root@192.0.2.12", "hostname", "-f"]
    key = argv[argv.index("-i") + 1]
    assert key == str(tmp_path / "secrets" / "lab-ssh-key") and Path(key).exists()
    assert "BatchMode=yes" in argv


def test_user_mode_reaches_the_nodes_forwarded_loopback_port(tmp_path: Path) -> None:
    paths, record = _lab(tmp_path, "user")
    target = ssh_target(paths, record, "ctl3")
    assert (target.host, target.port, target.prefix) == ("127.0.0.1", 4002, ())
    argv = ssh_argv(paths, target, ["true"])
    assert argv[0].endswith("/ssh") and argv[argv.index("-p") + 1] == "4002"


def test_an_unknown_node_is_a_clear_error(tmp_path: Path) -> None:
    paths, record = _lab(tmp_path, "netns")
    with pytest.raises(
        LabError, match=r"no node 'ctl9' in the lab \(nodes: ctl1, ctl2, ctl3, cmp1\)"
    ):
        ssh_target(paths, record, "ctl9")
