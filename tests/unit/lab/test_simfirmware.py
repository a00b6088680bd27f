from __future__ import annotations

from provisioner_lab.simfirmware import parse_ipxe


def test_install_script_yields_kernel_initrd_and_kickstart() -> None:
    script = parse_ipxe(
        "#!ipxe\n"
        "kernel http://192.0.2.2:8080/files/rocky9/vmlinuz initrd=initrd.img "
        "inst.ks=http://192.0.2.2:8080/ks/ctl1?token=abc ip=dhcp\n"
        "initrd --name initrd.img http://192.0.2.2:8080/files/rocky9/initrd.img\n"
        "boot\n"
    )
    assert script.action == "install"
    assert script.kernel_url == "http://192.0.2.2:8080/files/rocky9/vmlinuz"
    assert script.initrd_urls == ["http://192.0.2.2:8080/files/rocky9/initrd.img"]
    assert script.kickstart_url == "http://192.0.2.2:8080/ks/ctl1?token=abc"


def test_local_boot_script_exits() -> None:
    assert parse_ipxe("#!ipxe\necho booting from disk\nexit 1\n").action == "local"


def test_not_an_ipxe_script() -> None:
    assert parse_ipxe("<html>oops</html>").action == "unknown"
