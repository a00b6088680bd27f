"""OS images for liveimg installs: planned from site data, built with mmdebstrap, cached.

A profile with ``image:`` installs a tar.zst of a Debian root filesystem instead
of packages from a repository. Its package set is the profile's list plus the
role's ``image_packages``; ``plan_image`` turns that (and the apt sources, the
build options and ``FORMAT``) into an ``ImagePlan`` whose sha256 is the cache
key, so an image is rebuilt only when an input changes. Two roles with the same
inputs share one image. The key is over inputs, not output: mmdebstrap's output
is not bit-reproducible, so the tar.zst's own sha256 is recorded after the build
(that is what the kickstart's ``liveimg --checksum`` carries).

The mmdebstrap version is recorded but is not part of the key (the serve host
renders kickstarts without running mmdebstrap); ``image build --force``
rebuilds after a tool upgrade.

Layout under the state dir's ``images/`` (served by ``serve`` under /images/):
``<key>/image.tar.zst`` and ``<key>/image.json`` (the record). A build writes
into a temporary folder and renames it into place, so a reader never sees a
half-written image.

What the image holds on purpose: no SSH host keys and no /etc/hostname (every
node would share them; the installer makes them per node), and the kernel's
own generic initramfs (MODULES=most, with the mdadm and lvm2 hooks), built
natively here. The lab installer does not rebuild it: that initramfs already
assembles RAID1 and LVM roots, and rebuilding under TCG costs 1-2 minutes a node.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provisioner import programs
from provisioner.errors import ConfigError, ImageError
from provisioner.inventory.models import Site

log = logging.getLogger(__name__)

#: Bump when the build changes in a way that changes the image (hooks, options).
FORMAT = 1
IMAGE_FILE = "image.tar.zst"
RECORD_FILE = "image.json"
#: Characters of the input digest that name a cache entry (and the URL path).
KEY_CHARS = 24

#: Where this machine's apt sources are (``image.mirror`` unset).
HOST_SOURCES: tuple[str, ...] = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")

#: Leave out what a node never reads (copyright files stay).
SLIM_DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)

#: Services a node's bundle configures and starts (apply.sh enables them): Debian's
#: packages enable them at install, and a node's first boot would start each one with
#: the package's defaults (a standalone MariaDB, a single-node RabbitMQ and Corosync)
#: only for the apply to stop it again, minutes of a small machine's first boot.
BUNDLE_STARTED_SERVICES: tuple[str, ...] = (
    "mariadb",
    "rabbitmq-server",
    "corosync",
    "pacemaker",
    "haproxy",
    "keepalived",
    "memcached",
    "apache2",
    "keystone",
)

#: Run on the finished tree: per-node secrets and names are the installer's job.
CUSTOMIZE_HOOKS: tuple[str, ...] = (
    'rm -f "$1"/etc/ssh/ssh_host_*',
    'rm -f "$1"/etc/hostname',
    f"for u in {' '.join(BUNDLE_STARTED_SERVICES)}; do "
    'if [ -e "$1/lib/systemd/system/$u.service" ]; then '
    'chroot "$1" systemctl disable -q "$u.service"; fi; done',
)


def host_apt_sources(where: Sequence[str] = HOST_SOURCES) -> tuple[tuple[str, str], ...]:
    """This machine's apt source files with text: (path, text), in apt's reading order."""
    found: list[tuple[str, str]] = []
    for place in where:
        p = Path(place)
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        for f in files:
            if f.is_file() and f.suffix in (".list", ".sources"):
                text = f.read_text()
                if any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
                    found.append((str(f), text))
    return tuple(found)


@dataclass(frozen=True)
class ImagePlan:
    """Everything a build depends on (pure data); ``key`` names its cache entry."""

    suite: str
    variant: str
    packages: tuple[str, ...]
    #: mmdebstrap MIRROR arguments: URLs, sources lines or files (the host's)
    mirrors: tuple[str, ...]
    #: the text of the mirror files (their content, not their path, is an input)
    mirror_texts: tuple[str, ...]
    slim: bool

    @property
    def key(self) -> str:
        inputs = {
            "format": FORMAT,
            "suite": self.suite,
            "variant": self.variant,
            "packages": list(self.packages),
            "mirrors": [m for m in self.mirrors if not m.startswith("/")],
            "mirror_texts": list(self.mirror_texts),
            "dpkg": list(SLIM_DPKG_OPTIONS) if self.slim else [],
            "hooks": list(CUSTOMIZE_HOOKS),
        }
        text = json.dumps(inputs, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]

    def argv(self, out: Path) -> list[str]:
        """The mmdebstrap command that writes the image to ``out`` (a .tar.zst)."""
        argv = ["mmdebstrap", f"--variant={self.variant}", f"--include={','.join(self.packages)}"]
        if self.slim:
            argv += [f"--dpkgopt={o}" for o in SLIM_DPKG_OPTIONS]
        argv += [f"--customize-hook={h}" for h in CUSTOMIZE_HOOKS]
        return [*argv, self.suite, str(out), *self.mirrors]


def plan_image(
    site: Site,
    profile_name: str,
    role_name: str | None,
    sources: Callable[[], tuple[tuple[str, str], ...]] = host_apt_sources,
) -> ImagePlan:
    """The image of ``profile_name`` for nodes of ``role_name`` (None: the profile's own)."""
    profile = site.profiles.get(profile_name)
    if profile is None:
        raise ConfigError(f"profile {profile_name}: not in the site's profiles")
    image = profile.image
    if image is None:
        raise ConfigError(f"profile {profile_name}: image: not set (it installs from repo:)")
    extra: list[str] = []
    if role_name is not None:
        role = site.roles.get(role_name)
        if role is None:
            raise ConfigError(f"role {role_name}: not in the site's roles")
        extra = list(role.image_packages)
    packages = tuple(sorted(set(image.packages) | set(extra)))
    if image.mirror is not None:
        mirrors: tuple[str, ...] = (image.mirror,)
        texts: tuple[str, ...] = ()
    else:
        found = sources()
        if not found:
            raise ConfigError(
                f"profile {profile_name}: image.mirror: not set and this machine has no "
                "apt sources; set a mirror URL"
            )
        mirrors = tuple(path for path, _ in found)
        texts = tuple(text for _, text in found)
    return ImagePlan(image.suite, image.variant, packages, mirrors, texts, image.slim)


@dataclass
class BuiltImage:
    """The record of one built image (``image.json``)."""

    key: str
    sha256: str
    size: int
    suite: str
    variant: str
    packages: list[str]
    built_at: str
    seconds: float
    tool: str
    #: which profile/role asked for it (roles with equal inputs share an image)
    names: list[str] = field(default_factory=list)

    @property
    def url_path(self) -> str:
        """Its path under the boot server: ``<base_url>/<url_path>``."""
        return f"images/{self.key}/{IMAGE_FILE}"


def image_name(profile: str, role: str | None) -> str:
    return f"{profile}/{role}" if role else profile


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ImageStore:
    """The built images under one folder (the state dir's ``images/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, key: str) -> Path:
        return self.root / key

    def file(self, image: BuiltImage) -> Path:
        return self.folder(image.key) / IMAGE_FILE

    def get(self, key: str) -> BuiltImage | None:
        """The built image of ``key``, or None (not built, or its file is gone)."""
        record = self.folder(key) / RECORD_FILE
        try:
            data = json.loads(record.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ImageError(f"image {key}: unreadable record {record}: {exc}") from exc
        image = BuiltImage(**data)
        return image if (self.folder(key) / IMAGE_FILE).is_file() else None

    def list(self) -> list[BuiltImage]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir()]
        return sorted((i for i in found if i is not None), key=lambda i: i.built_at)

    def _save(self, folder: Path, image: BuiltImage) -> None:
        tmp = folder / (RECORD_FILE + ".partial")
        tmp.write_text(json.dumps(asdict(image), indent=2) + "\n")
        tmp.replace(folder / RECORD_FILE)

    def build(
        self, plan: ImagePlan, name: str, *, force: bool = False, quiet: bool = True
    ) -> tuple[BuiltImage, bool]:
        """The image of ``plan``, built unless cached; (image, whether it was built now)."""
        key = plan.key
        cached = self.get(key)
        if cached is not None and not force:
            if name not in cached.names:
                cached.names.append(name)
                self._save(self.folder(key), cached)
            log.info("image %s (%s): cached", name, key)
            return cached, False
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        work.chmod(0o755)  # mkdtemp's 0700 would outlive the rename; images are not secret
        try:
            image = self._run(plan, name, work, quiet)
            self._save(work, image)
            final = self.folder(key)
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        log.info("image %s (%s): built, %d bytes, sha256 %s", name, key, image.size, image.sha256)
        return image, True

    def _run(self, plan: ImagePlan, name: str, work: Path, quiet: bool) -> BuiltImage:
        out = work / IMAGE_FILE
        argv = programs.command(plan.argv(out))
        # mmdebstrap finds zstd and tar on PATH: make sure they are there (the table says why)
        programs.path("zstd")
        programs.path("tar")
        tool = subprocess.run(
            [argv[0], "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        log.info("image %s: %s", name, " ".join(argv))
        started = time.monotonic()
        env = dict(os.environ, PATH=programs.SYSTEM_PATH + os.pathsep + os.environ.get("PATH", ""))
        done = subprocess.run(
            argv,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
            text=True,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout or "").strip().splitlines()[-15:])
            raise ImageError(f"image {name}: mmdebstrap exited with {done.returncode}\n{tail}")
        seconds = time.monotonic() - started
        return BuiltImage(
            key=plan.key,
            sha256=_sha256(out),
            size=out.stat().st_size,
            suite=plan.suite,
            variant=plan.variant,
            packages=list(plan.packages),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            seconds=round(seconds, 1),
            tool=tool,
            names=[name],
        )


def image_targets(site: Site, profile: str | None, role: str | None) -> list[tuple[str, str]]:
    """The (profile, role) pairs ``image build`` builds: as asked, else what the nodes use.

    With neither option: every image profile crossed with the roles of its nodes."""
    if profile is not None and role is not None:
        return [(profile, role)]
    pairs: set[tuple[str, str]] = set()
    for node in site.nodes:
        p = site.profile_of(node)
        if p is None or site.profiles.get(p) is None or site.profiles[p].image is None:
            continue
        if (profile is None or p == profile) and (role is None or node.role == role):
            pairs.add((p, node.role))
    if not pairs and profile is not None:
        roles = [role] if role is not None else list(site.roles)
        pairs = {(profile, r) for r in roles}
    if not pairs:
        raise ConfigError("image build: no node uses an image profile; give --profile")
    return sorted(pairs)
