"""The boot programs the lab installer leaves on a node's disk have the right shape."""

from __future__ import annotations

import struct

import pytest

from provisioner_lab.localboot import (
    EFI_FILE_SIZE,
    MBR_CODE_AREA,
    boot_program,
    efi_head,
    mbr_head,
)


def test_mbr_program_fits_the_boot_code_area_and_carries_the_node_name() -> None:
    program = boot_program(mbr_head(), "ctl1", MBR_CODE_AREA)
    assert len(program) == MBR_CODE_AREA
    assert b"provisioner lab: ctl1 booted from local disk" in program
    assert program[0] == 0xFA  # cli


def test_efi_program_is_a_pe32_plus_efi_application() -> None:
    program = boot_program(efi_head(), "cmp1", EFI_FILE_SIZE)
    assert program[:2] == b"MZ"
    pe = struct.unpack_from("<I", program, 0x3C)[0]
    assert program[pe : pe + 4] == b"PE\0\0"
    machine, sections = struct.unpack_from("<HH", program, pe + 4)
    magic = struct.unpack_from("<H", program, pe + 24)[0]
    subsystem = struct.unpack_from("<H", program, pe + 24 + 68)[0]
    assert (machine, sections, magic, subsystem) == (0x8664, 1, 0x20B, 10)
    assert b"provisioner lab: cmp1 booted from local disk" in program


def test_a_message_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="node x"):
        boot_program(mbr_head() + b"\0" * 400, "x", MBR_CODE_AREA)
