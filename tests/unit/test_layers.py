"""Imports only go down the layers (../shared/DESIGN.md, errors.py), and the lab stays outside.

Layers, top to bottom:
  cli -> daemon -> pipeline -> (bootserver, power, ddns, dhcp, install, roles)
      -> (state, inventory) -> (settings, content, templating, programs) -> errors
A module may import its own package, any package of a lower layer, and, within the
middle layers, a sibling only where allowed below. Imports under ``if TYPE_CHECKING``
are annotations, not dependencies, and are ignored.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "provisioner"

LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"daemon"},
    {"pipeline"},
    {"bootserver", "power", "ddns", "dhcp", "install", "roles", "discovery"},
    {"state", "inventory"},
    {"settings", "content", "templating", "programs", "__init__"},
    {"errors"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: sideways imports inside a layer that the design allows (importer -> imported)
SIDEWAYS = {
    ("bootserver", "dhcp"),  # serve runs dnsmasq with the host entries dhcp/ plans
    ("bootserver", "install"),  # the kickstart route renders what install/ plans
    ("bootserver", "roles"),  # the bundle pull route serves what roles/ generated
    ("bootserver", "discovery"),  # the discovery route checks reports as discovery/ defines
    ("inventory", "state"),  # generated secrets are written by state/keys.py
}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported provisioner module) for every import outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for sub in node.body for child in ast.walk(sub))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "provisioner":  # from provisioner import programs
                for alias in node.names:  # a submodule, or a name of the package itself
                    sub = PACKAGE / alias.name
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    yield node.lineno, f"provisioner.{alias.name}" if is_module else "provisioner"
            elif node.module.split(".")[0] in ("provisioner", "provisioner_lab"):
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("provisioner", "provisioner_lab"):
                    yield node.lineno, alias.name


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        mine = _component(module)
        for line, imported in _imports(path):
            where = f"{path.relative_to(REPO)}:{line}: imports {imported}"
            if imported.startswith("provisioner_lab"):
                found.append(f"{where} (the runtime never imports the lab)")
                continue
            theirs = _component(imported)
            if theirs == mine:
                continue
            if RANK[theirs] < RANK[mine]:
                found.append(f"{where} (up: {mine} is below {theirs})")
            elif RANK[theirs] == RANK[mine] and (mine, theirs) not in SIDEWAYS:
                found.append(f"{where} (sideways: {mine} and {theirs} are one layer)")
    return found


def test_every_package_has_a_layer() -> None:
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    names = {n for n in names if not n.startswith((".", "__pycache__")) and n != "py"}
    assert names - set(RANK) == set(), "give the new package a layer in this test"


def test_imports_only_go_down() -> None:
    assert _violations() == []


def test_a_layer_violation_is_caught(tmp_path: Path) -> None:
    bad = PACKAGE / "state" / "_layer_probe.py"
    bad.write_text("from provisioner.pipeline.runner import Pipeline\n")
    try:
        assert any("_layer_probe.py:1" in v for v in _violations())
    finally:
        bad.unlink()


def test_serve_and_the_cli_work_without_the_lab() -> None:
    """A plain install without the lab: nothing but the lab's own commands goes missing."""
    probe = (
        "import sys, importlib.abc\n"
        "class NoLab(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'provisioner_lab':\n"
        "            raise ImportError('no lab here')\n"
        "sys.meta_path.insert(0, NoLab())\n"
        "import provisioner.bootserver.http, provisioner.bootserver.server\n"
        "import provisioner.daemon.service, provisioner.pipeline.factory\n"
        "from provisioner.cli import main\n"
        "sys.argv = ['provisioner', '--help']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    commands = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line}
    assert {"serve", "provision", "power", "dns", "doctor"} <= commands
    assert not {"lab", "vbmc"} & commands
