from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Every program a test starts must be in provisioner/programs.py (see program_audit.py).
from tests.program_audit import (  # noqa: F401
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = REPO / "examples" / "site.yaml"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A private copy of the example site with its secrets, mode 0600."""
    shutil.copy(EXAMPLE_SITE, tmp_path / "site.yaml")
    shutil.copytree(REPO / "examples" / "secrets", tmp_path / "secrets")
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o600)
    return tmp_path


@pytest.fixture
def example_text() -> str:
    return EXAMPLE_SITE.read_text()
