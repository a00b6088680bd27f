"""How long the lab installer takes: image build, and one install in qemu (TCG).

Run from the repository root: ``python3 benchmarks/lab_installer.py [RUNS]``.
Prints the build time (cold or cached), then per run the qemu wall time and the
installer's own time from kernel start to "installation complete", for the
sample controller kickstart (two disks, RAID1 + LVM, BIOS).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner import programs
from provisioner_lab.installer import (
    DEFAULT_CACHE_DIR,
    build_lab_installer,
    kernel_args,
)

KICKSTART = Path(__file__).resolve().parents[1] / "tests/functional/data/lab-controller-bios.ks"


def serve(kickstart: list[str]) -> ThreadingHTTPServer:
    """Serves kickstart[0] for any GET and accepts any callback POST."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(kickstart[0].encode())

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._reply(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory(prefix="lab-installer-bench-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        installer = build_lab_installer(work / "image", DEFAULT_CACHE_DIR)
        print(f"build (kernel cached, initramfs fresh): {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        build_lab_installer(work / "image", DEFAULT_CACHE_DIR)
        print(f"build again (cached):                 {time.monotonic() - started:.2f} s")
        print(f"initramfs size: {installer.initrd.stat().st_size / 2**20:.1f} MiB")
        for run in range(1, runs + 1):
            disks = [work / f"vd{c}.img" for c in "ab"]
            for disk in disks:
                disk.unlink(missing_ok=True)
                subprocess.run([programs.path("truncate"), "-s", "2G", str(disk)], check=True)
            kickstart: list[str] = [""]
            server = serve(kickstart)
            port = server.server_address[1]
            base = f"http://10.0.2.2:{port}"
            kickstart[0] = (
                KICKSTART.read_text()
                .replace("@BASE@", base)
                .replace("@NODE@", "bench")
                .replace("@TOKEN@", "t")
            )
            console = work / "console.log"
            argv = [
                programs.path("qemu-system-x86_64"),
                "-accel", "tcg", "-m", "768", "-nographic", "-no-reboot",
                "-kernel", str(installer.kernel), "-initrd", str(installer.initrd),
                "-append", kernel_args(f"http://10.0.2.2:{port}/ks/bench?token=t"),
                "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci", "-serial", f"file:{console}", "-monitor", "none",
            ]  # fmt: skip
            for i, disk in enumerate(disks):
                argv += ["-drive", f"file={disk},format=raw,if=virtio,index={i},cache=unsafe"]
            started = time.monotonic()
            subprocess.run(argv, capture_output=True, timeout=600)
            wall = time.monotonic() - started
            server.shutdown()
            server.server_close()
            log = console.read_text(errors="replace")
            done = re.search(r"\[ *(\d+)s\] installation of bench complete", log)
            boot = re.search(r"\[ *([\d.]+)\] Run /init", log)
            to_init = float(boot[1]) if boot else -1.0
            installer_s = done[1] if done else "FAILED"
            print(
                f"run {run}: qemu {wall:.1f} s; kernel to /init {to_init:.1f} s; "
                f"installer {installer_s} s"
            )


if __name__ == "__main__":
    main()
