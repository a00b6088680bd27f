"""The lab's plan: which qemu nodes the virtual BMCs drive, and how they are wired."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioner_lab.network import plan_network
from provisioner_lab.orchestrate import (
    LabOptions,
    LabPaths,
    _forget_nvram_of_changed_nodes,
    lab_spec,
    vbmc_config,
)
from provisioner_lab.procs import LabRecord, ProcRecord, alive, cmdline
from provisioner_lab.vbmc.qemu import QemuSpec, build_qemu_argv


def _config(mode: str, small: bool = False) -> tuple[LabPaths, dict]:  # type: ignore[type-arg]
    opts = LabOptions(Path("/lab"), small=small)
    spec = lab_spec(opts, mode)  # type: ignore[arg-type]
    plan = plan_network([n.name for n in spec.nodes], mode, namespace="pv9b-x")  # type: ignore[arg-type]
    paths = LabPaths(Path("/lab"))
    return paths, vbmc_config(paths, spec, plan)


def test_default_lab_is_six_nodes_mixing_bios_and_uefi_with_a_tap_each() -> None:
    paths, config = _config("netns")
    bmcs = config["bmcs"]
    assert [b["name"] for b in bmcs] == ["ctl1", "ctl2", "ctl3", "net1", "sto1", "cmp1"]
    assert [b["port"] for b in bmcs] == list(range(6230, 6236))
    assert {b["qemu"]["boot_mode"] for b in bmcs} == {"bios", "uefi"}
    # never inline: the lab site's own generated file
    assert config["defaults"]["password"] == {
        "file": "secrets/bmc-password",
        "generate": "password",
    }
    for bmc in bmcs:
        spec = QemuSpec.model_validate(bmc["qemu"])
        assert spec.nics[0].tap and spec.nics[0].tap.startswith("tap")
        argv = " ".join(
            build_qemu_argv(spec.model_copy(update={"ovmf_vars": Path("/v")}), "network")
        )
        assert "-accel tcg" in argv and "-no-reboot" in argv and "virtio-rng-pci" in argv
        assert f"path=/lab/serial/{spec.name}.log,append=on" in argv
    sto = next(b for b in bmcs if b["name"] == "sto1")["qemu"]
    assert [d["path"] for d in sto["disks"]] == [str(paths.disk("sto1", i)) for i in range(3)]


def test_small_lab_keeps_three_controllers_for_quorum() -> None:
    _, config = _config("netns", small=True)
    assert [b["name"] for b in config["bmcs"]] == ["ctl1", "ctl2", "ctl3", "cmp1"]


def test_one_uefi_node_boots_through_its_firmware_pxe_and_tftp_in_each_lab() -> None:
    for small in (False, True):
        _, config = _config("netns", small=small)
        firmware = [b["qemu"] for b in config["bmcs"] if b["qemu"]["nics"][0]["firmware_pxe"]]
        assert len(firmware) == 1 and firmware[0]["boot_mode"] == "uefi"
        others = [b["qemu"] for b in config["bmcs"] if not b["qemu"]["nics"][0]["firmware_pxe"]]
        assert {q["boot_mode"] for q in others} == {"bios", "uefi"}  # both ROM paths stay
    _, user = _config("user")
    assert not any(b["qemu"]["nics"][0].get("firmware_pxe") for b in user["bmcs"])


def test_user_mode_nodes_boot_their_script_over_slirp() -> None:
    _, config = _config("user")
    nic = config["bmcs"][0]["qemu"]["nics"][0]
    assert "tap" not in nic
    assert "net=192.0.2.0/24" in nic["user"] and "dhcpstart=192.0.2.11" in nic["user"]
    assert nic["user"].endswith("bootfile=http://192.0.2.2:8080/boot/52-54-00-00-02-0b.ipxe")
    # the installed system's sshd, for `lab ssh`: one loopback port per node
    forwards = [b["qemu"]["nics"][0]["user"].split(",hostfwd=")[1].split(",")[0]
                for b in config["bmcs"]]  # fmt: skip
    assert forwards == [f"tcp:127.0.0.1:{2230 + i}-:22" for i in range(6)]


def test_controllers_get_the_memory_their_image_needs() -> None:
    for small in (False, True):
        _, config = _config("netns", small=small)
        memory = {b["name"]: b["qemu"]["memory_mb"] for b in config["bmcs"]}
        assert all(memory[n] == 2048 for n in ("ctl1", "ctl2", "ctl3")), memory
        assert all(m >= 1024 for m in memory.values())


def test_lab_record_round_trip_and_a_dead_pid_is_not_alive(tmp_path: Path) -> None:
    record = LabRecord("netns", "pv9b-x", "root", ["ctl1"], [ProcRecord("bind", 1, "m", "l")])
    record.save(tmp_path / "lab.json")
    assert LabRecord.load(tmp_path / "lab.json") == record
    assert LabRecord.load(tmp_path / "missing.json") is None
    assert cmdline(2**22 + 12345) == ""
    assert not alive(ProcRecord("gone", 2**22 + 12345, "m", "l"))
    assert not alive(ProcRecord("init", 1, "no-such-marker-in-init", "l"))  # a reused pid


def test_a_node_whose_virtual_hardware_changed_gets_a_fresh_uefi_variable_store(
    tmp_path: Path,
) -> None:
    opts = LabOptions(tmp_path)
    spec = lab_spec(opts, "netns")
    plan = plan_network([n.name for n in spec.nodes], "netns", namespace="pv9b-x")
    paths = LabPaths(tmp_path)
    before = vbmc_config(paths, spec, plan)
    assert before["bmcs"][0]["qemu"]["ovmf_vars"] == str(paths.nvram("ctl1"))
    before["bmcs"][2]["qemu"]["nics"][0]["firmware_pxe"] = False  # ctl3 had the iPXE ROM
    paths.vbmc_config.write_text(yaml.safe_dump(before))
    for name in ("ctl1", "ctl3", "sto1"):
        paths.nvram(name).parent.mkdir(parents=True, exist_ok=True)
        paths.nvram(name).write_bytes(b"boot options")

    _forget_nvram_of_changed_nodes(paths, vbmc_config(paths, spec, plan))

    assert not paths.nvram("ctl3").exists()
    assert paths.nvram("ctl1").exists() and paths.nvram("sto1").exists()
