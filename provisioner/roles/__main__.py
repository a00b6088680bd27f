"""`python3 -m provisioner.roles`: render a node's HA bundle (what the default hooks call).

Reads the hook context (JSON) on stdin, or takes --node with --first/--reprovision,
and writes the bundle under <state dir>/bundles/<node>/ (or prints it with --print).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.inventory import load_site
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import SECRETS_DIR, BundleStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m provisioner.roles")
    parser.add_argument("--site", default=os.environ.get("PROVISIONER_SITE", "site.yaml"))
    parser.add_argument("--state-dir", default=os.environ.get("PROVISIONER_STATE_DIR"))
    parser.add_argument("--context", help="hook context JSON file ('-' for stdin)")
    parser.add_argument("--node", help="node name (without --context)")
    parser.add_argument("--reprovision", action="store_true", help="without --context")
    parser.add_argument("--print", dest="print_only", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.context:
            text = sys.stdin.read() if args.context == "-" else Path(args.context).read_text()
            context = json.loads(text)
            node, facts = context["node"], DeployFacts.from_context(context)
        elif args.node:
            node, facts = args.node, DeployFacts(first_deployment=not args.reprovision)
        else:
            parser.error("give --context or --node")
        site = load_site(Path(args.site))
        files = generate(site, node, facts)
        if args.print_only or not args.state_dir:
            for rel, text in sorted(files.items()):
                shown = "(secret, not shown)\n" if rel.startswith(f"{SECRETS_DIR}/") else text
                print(f"==> {rel} <==\n{shown}")
            return 0
        path = BundleStore(Path(args.state_dir)).write(node, files)
        print(f"node {node}: {len(files)} files written to {path}")
        return 0
    except ProvisionerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as exc:
        print(f"error: bad hook context: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
