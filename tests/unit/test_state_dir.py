"""StateDir: every path under the state directory, named in one place."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from provisioner.daemon.apitoken import ensure_api_token, read_daemon_file, write_daemon_file
from provisioner.roles.bundles import BundleStore
from provisioner.settings import Settings, StateDir
from provisioner.state.store import Store, sqlite_url
from provisioner.state.tokens import DeployTokens

LAYOUT = {
    "db": "provisioner.db",
    "log": "provisioner.log",
    "nodes_changed": "nodes.changed",
    "deploy_token_key": "deploy-token.key",
    "api_token": "api.token",
    "daemon_file": "daemon.json",
    "last_good_site": "site.last-good.json",
    "dns_memo": "dns-memo.json",
    "site_cache": "site-cache",
    "boot_files": "boot-files",
    "images": "images",
    "tftp": "tftp",
    "dhcp": "dhcp",
    "bundles": "bundles",
    "bundle_tokens": "bundle-tokens",
    "lab": "lab",
    "vbmc": "vbmc",
}


def _path_properties() -> set[str]:
    return {
        name
        for name, value in vars(StateDir).items()
        if isinstance(value, property) and name != "db_url"
    }


def test_the_layout_is_what_existing_state_dirs_hold() -> None:
    """Renaming any of these would orphan the files of an installed provisioner."""
    state = StateDir(Path("/srv/prov"))
    assert _path_properties() == set(LAYOUT)
    for name, rel in LAYOUT.items():
        assert getattr(state, name) == Path("/srv/prov") / rel, name
    assert state.bundle("ctl1") == Path("/srv/prov/bundles/ctl1")
    assert state.db_url == "sqlite:////srv/prov/provisioner.db"
    assert [f.name for f in fields(StateDir)] == ["root"]


def test_every_path_is_distinct_and_inside_the_state_dir() -> None:
    state = StateDir(Path("/srv/prov"))
    paths = [getattr(state, name) for name in LAYOUT]
    assert len(set(paths)) == len(paths)
    assert all(p.parent == state.root for p in paths)


def test_settings_give_their_state_dir_layout(tmp_path: Path) -> None:
    settings = Settings(site_path=tmp_path / "site.yaml", state_dir=tmp_path / "state")
    assert settings.state == StateDir(tmp_path / "state")
    assert settings.log_path == tmp_path / "state" / "provisioner.log"


def test_the_modules_keep_their_files_where_state_dir_says(tmp_path: Path) -> None:
    """What is written under the state dir lands on StateDir's paths, and nowhere else."""
    state = StateDir(tmp_path)
    store = Store.open(tmp_path, None)
    store.close()
    assert sqlite_url(tmp_path) == state.db_url
    DeployTokens.from_state_dir(tmp_path)
    ensure_api_token(tmp_path)
    write_daemon_file(tmp_path, "http://127.0.0.1:1")
    assert read_daemon_file(tmp_path) is not None
    bundles = BundleStore(tmp_path)
    bundles.write("ctl1", {"a.txt": "x\n"})
    bundles.allow_pull("ctl1", "spent-token")
    assert state.db.is_file()
    assert state.daemon_file.is_file()
    for secret in (state.deploy_token_key, state.api_token):
        assert secret.stat().st_mode & 0o077 == 0, secret
    assert (state.bundle("ctl1") / "a.txt").read_text() == "x\n"
    assert (state.bundle_tokens / "ctl1.sha256").is_file()
    made = {p.name for p in tmp_path.iterdir()}
    known = {p.name for p in (getattr(state, n) for n in LAYOUT)}
    sqlite_side_files = {f"{state.db.name}-wal", f"{state.db.name}-shm"}
    assert made - known - sqlite_side_files == set()
