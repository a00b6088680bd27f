"""Fixed, lab-only values for the example site's secrets, so tests stay deterministic.

examples/site.yaml generates its secrets on first use (``generate:``), so a
fresh clone has none and `validate` has nothing to warn about. Tests compare
against known values (the golden kickstarts carry the root password hash), so
they put these in place first, mode 0600, as an operator's files would be.
"""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE_SECRETS = Path(__file__).resolve().parent / "data" / "example-secrets"


def seed_example_secrets(secrets_dir: Path) -> Path:
    """Write the fixed secrets into ``secrets_dir`` (replacing generated ones); mode 0600."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for source in EXAMPLE_SECRETS.iterdir():
        if source.suffix == ".md":
            continue
        target = secrets_dir / source.name
        target.unlink(missing_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)
    return secrets_dir
