"""A Linux kernel for lab nodes: Debian's cloud kernel, fetched with apt.

The cloud kernel boots in about two seconds under TCG. Its virtio drivers are
modules; ``module_closure`` lists a module with everything it depends on, in
load order, from the modules.dep that depmod writes into the unpacked tree.
"""

from __future__ import annotations

import logging
import lzma
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioner import programs
from provisioner.errors import ProvisionerError

log = logging.getLogger(__name__)

METAPACKAGE = "linux-image-cloud-amd64"


class KernelFetchError(ProvisionerError):
    """The lab kernel could not be fetched or unpacked."""


@dataclass(frozen=True)
class Kernel:
    version: str
    vmlinuz: Path
    modules_dir: Path  # .../lib/modules/<version>

    def module_path(self, name: str) -> Path:
        """The .ko file of a module named like 'virtio_net' (dashes and underscores alike)."""
        wanted = name.replace("-", "_")
        for line in (self.modules_dir / "modules.dep").read_text().splitlines():
            rel = line.split(":", 1)[0]
            stem = Path(rel).name.split(".ko", 1)[0].replace("-", "_")
            if stem == wanted:
                return self.modules_dir / rel
        raise KernelFetchError(f"kernel {self.version}: no module named {name}")

    def module_closure(self, names: list[str]) -> list[Path]:
        """The modules and their dependencies, each once, dependencies first."""
        deps: dict[str, list[str]] = {}
        for line in (self.modules_dir / "modules.dep").read_text().splitlines():
            rel, _, rest = line.partition(":")
            deps[rel] = rest.split()
        ordered: list[str] = []

        def visit(rel: str) -> None:
            if rel in ordered:
                return
            for dep in deps.get(rel, []):
                visit(dep)
            ordered.append(rel)

        for name in names:
            visit(str(self.module_path(name).relative_to(self.modules_dir)))
        return [self.modules_dir / rel for rel in ordered]


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            programs.command(argv), cwd=cwd, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelFetchError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise KernelFetchError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _kernel_package() -> str:
    """The versioned package behind the cloud-kernel metapackage."""
    out = _run(["apt-cache", "depends", METAPACKAGE])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    raise KernelFetchError(f"apt does not know {METAPACKAGE}; run apt-get update")


def fetch_cloud_kernel(cache_dir: Path) -> Kernel:
    """Download and unpack Debian's cloud kernel into ``cache_dir`` (once)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        package = _kernel_package()
    except KernelFetchError:
        _run(["apt-get", "update", "-qq"])
        package = _kernel_package()
    version = package.removeprefix("linux-image-")
    root = cache_dir / package
    kernel = Kernel(
        version, root / "boot" / f"vmlinuz-{version}", root / "lib" / "modules" / version
    )
    if kernel.vmlinuz.exists() and (kernel.modules_dir / "modules.dep").exists():
        return kernel
    log.info("fetching lab kernel %s", package)
    download = cache_dir / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir()
    download.chmod(0o777)  # apt's sandbox user must be able to write here
    _run(["apt-get", "download", "-q", package], cwd=download)
    (deb,) = download.glob("*.deb")
    partial = cache_dir / f"{package}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    _run(["dpkg-deb", "-x", str(deb), str(partial)])
    _run(["depmod", "-b", str(partial), version])
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    shutil.rmtree(download, ignore_errors=True)
    return kernel


def module_bytes(path: Path) -> bytes:
    """A module's contents, decompressed if the package ships it compressed."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    return data
