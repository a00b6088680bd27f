"""What a lab node runs when it boots from its own disk after the lab installer.

The lab installer installs no operating system, yet the pipeline's "next boot
goes to the local disk" must be observable. So it writes a tiny boot program
that prints one line on the serial console and then idles:

* legacy BIOS: boot code in the disk's (protective) MBR, writing to COM1;
* UEFI: ``\\EFI\\BOOT\\BOOTX64.EFI`` on the EFI system partition (the firmware's
  fallback path), printing through the firmware's console (OVMF mirrors it to
  the serial port).

Both are a fixed code head built here, followed by the ASCII message the
installer appends (with the node's name) and zero padding to a fixed size.
"""

from __future__ import annotations

import struct

#: Text the installer puts after the code (the node name is filled in there).
MESSAGE = "provisioner lab: {node} booted from local disk (lab installer: no OS installed)"

MBR_CODE_AREA = 440  # bytes 0..439; the GPT protective partition and 0x55AA follow
EFI_FILE_SIZE = 0x400  # headers (0x200) + one section (0x200)

_MBR_MESSAGE_OFFSET = 34


def mbr_head() -> bytes:
    """16-bit boot code: write the NUL-terminated text after it to COM1, then halt."""
    si = 0x7C00 + _MBR_MESSAGE_OFFSET
    code = bytes(
        [
            0xFA,  # cli
            0x31, 0xC0,  # xor ax, ax
            0x8E, 0xD8,  # mov ds, ax
            0xBE, si & 0xFF, si >> 8,  # mov si, message
            0xAC,  # next: lodsb
            0x08, 0xC0,  # or al, al
            0x74, 0x12,  # jz done
            0x88, 0xC4,  # mov ah, al
            0xBA, 0xFD, 0x03,  # mov dx, 0x3fd (line status)
            0xEC,  # wait: in al, dx
            0xA8, 0x20,  # test al, 0x20 (transmitter empty)
            0x74, 0xFB,  # jz wait
            0x88, 0xE0,  # mov al, ah
            0xBA, 0xF8, 0x03,  # mov dx, 0x3f8 (COM1)
            0xEE,  # out dx, al
            0xEB, 0xE9,  # jmp next
            0xF4,  # done: hlt
            0xEB, 0xFD,  # jmp done
        ]
    )  # fmt: skip
    assert len(code) == _MBR_MESSAGE_OFFSET
    return code


def _efi_code() -> bytes:
    """x86-64 (MS ABI): stop the firmware's 5-minute watchdog (it would reset the
    node), print each byte of the text after the code with ConOut, then halt."""
    code = bytes(
        [
            0x48, 0x83, 0xEC, 0x38,  # sub rsp, 0x38
            0x48, 0x8B, 0x5A, 0x40,  # mov rbx, [rdx+0x40]  (SystemTable->ConOut)
            0x48, 0x8B, 0x42, 0x60,  # mov rax, [rdx+0x60]  (SystemTable->BootServices)
            0x31, 0xC9,  # xor ecx, ecx
            0x31, 0xD2,  # xor edx, edx
            0x45, 0x31, 0xC0,  # xor r8d, r8d
            0x45, 0x31, 0xC9,  # xor r9d, r9d
            0xFF, 0x90, 0x00, 0x01, 0x00, 0x00,  # call [rax+0x100]  (SetWatchdogTimer(0): off)
            0x48, 0x8D, 0x35, 0x1E, 0x00, 0x00, 0x00,  # lea rsi, [rip+message]
            0x0F, 0xB6, 0x06,  # next: movzx eax, byte [rsi]
            0x85, 0xC0,  # test eax, eax
            0x74, 0x14,  # jz done
            0x89, 0x44, 0x24, 0x20,  # mov [rsp+0x20], eax  (UTF-16 char + NUL)
            0x48, 0x89, 0xD9,  # mov rcx, rbx
            0x48, 0x8D, 0x54, 0x24, 0x20,  # lea rdx, [rsp+0x20]
            0xFF, 0x53, 0x08,  # call [rbx+8]  (OutputString)
            0x48, 0xFF, 0xC6,  # inc rsi
            0xEB, 0xE5,  # jmp next
            0xF4,  # done: hlt
            0xEB, 0xFD,  # jmp done
        ]
    )  # fmt: skip
    assert len(code) == 65
    return code


def efi_head() -> bytes:
    """A PE32+ EFI application (one position-independent .text section), minus its text."""
    code = _efi_code()
    dos = b"MZ" + b"\0" * 58 + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x8664, 1, 0, 0, 0, 240, 0x0222)
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,  # PE32+
        0, 0,  # linker version
        0x200, 0, 0,  # sizes of code, initialised and uninitialised data
        0x1000, 0x1000,  # entry point, base of code
        0x400000,  # image base
        0x1000, 0x200,  # section and file alignment
        0, 0, 0, 0, 0, 0,  # OS, image and subsystem versions
        0,  # Win32 version
        0x2000, 0x200,  # size of image, size of headers
        0,  # checksum
        10,  # subsystem: EFI application
        0,  # DLL characteristics
        0x10000, 0x1000, 0x10000, 0x1000,  # stack and heap reserve/commit
        0,  # loader flags
        16,  # number of data directories
    ) + b"\0" * (16 * 8)  # fmt: skip
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    headers = dos + coff + optional + section
    assert len(coff) + len(optional) == 24 + 240
    return headers.ljust(0x200, b"\0") + code


def message(node: str) -> str:
    return MESSAGE.format(node=node)


def boot_program(head: bytes, node: str, size: int) -> bytes:
    """The whole program for ``node`` (what the installer's shell assembles in the VM)."""
    text = ("\r\n" + message(node) + "\r\n").encode("ascii", "replace")
    program = head + text + b"\0"
    if len(program) > size:
        raise ValueError(f"node {node}: boot message too long for {size} bytes")
    return program.ljust(size, b"\0")
