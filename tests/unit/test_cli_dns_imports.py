"""`dns` commands pay only for what they use (issue 20: a second of every `dns apply`
went to importing the lab add-on's store and SQLAlchemy for `dns lab`)."""

from __future__ import annotations

import subprocess
import sys

from provisioner.cli import dns as dns_cli
from provisioner.ddns import publish


def test_retry_default_is_the_librarys() -> None:
    assert dns_cli.DEFAULT_RETRY_FOR == publish.DEFAULT_RETRY_FOR


def test_dns_group_loads_without_the_store_or_the_lab() -> None:
    code = (
        "import sys\n"
        "from provisioner.cli import main\n"
        "try:\n    main(['dns', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'sqlalchemy', 'alembic', 'flask', 'pyghmi', 'provisioner_lab.cli'}\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "      or m == 'provisioner_lab.cli'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert " lab " in out  # the add-on's `dns lab` is listed
    assert "LOADED []" in out
