from __future__ import annotations

from pathlib import Path

import pytest

from tests.example_secrets import seed_example_secrets


@pytest.fixture
def site_dir(site_dir: Path) -> Path:
    """The example site's copy (tests/conftest.py) with fixed lab-only secrets in place
    of the ones it would generate on first use: tests compare against known values."""
    seed_example_secrets(site_dir / "secrets")
    return site_dir
