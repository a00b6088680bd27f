"""Many nodes: chunked updates a real BIND accepts, and a mass renumbering with no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest
from bindlab import make_lab, write_big_site

from provisioner.ddns.publish import publish_site

pytestmark = pytest.mark.functional

NODES = 1500


def test_1500_nodes_go_out_in_a_few_messages_and_renumber_cleanly(
    site_dir: Path, tmp_path: Path
) -> None:
    write_big_site(site_dir, NODES)
    labs = make_lab(site_dir, tmp_path / "bind")
    lab = next(labs)
    try:
        report = publish_site(lab.site())
        assert report.changes == 2 * NODES + 10  # + api, its PTR and 8 aliases
        assert 2 < report.messages < 20  # > 64 KiB of changes, so chunked, yet batched
        forward = lab.axfr("lab.example.test")
        reverse = lab.axfr("18.198.in-addr.arpa")
        assert forward.count("\tA\t198.18.") == NODES + 1
        assert reverse.count("\tPTR\t") == NODES + 1
        assert lab.dig("n1499.lab.example.test", "A") == ["198.18.5.250"]
        assert lab.dig("-x", "198.18.5.250") == ["n1499.lab.example.test."]

        path = lab.site_dir / "site.yaml"
        path.write_text(path.read_text().replace("ip: 198.18.", "ip: 198.18.1"))  # x -> 1x
        assert publish_site(lab.site()).changes == 3 * NODES  # A, new PTR, old PTR gone
        reverse = lab.axfr("18.198.in-addr.arpa")
        assert reverse.count("\tPTR\t") == NODES + 1
        assert lab.dig("n1499.lab.example.test", "A") == ["198.18.15.250"]
        assert lab.dig("-x", "198.18.5.250") == []
        assert lab.dig("-x", "198.18.15.250") == ["n1499.lab.example.test."]
    finally:
        labs.close()
