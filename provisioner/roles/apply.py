"""What makes a bundle apply itself: ``apply/lib.sh``, the role's ``apply/apply.sh`` and,
for controllers, the cluster's shared keys.

The installed system's apply unit (kickstart/snippets/firstboot-callback.j2) pulls the
bundle and runs ``apply/apply.sh``, which installs the files and brings the role's HA
layer up in order; its stdout is the report the unit posts back ("applied" or
"apply-failed", see provisioner/bootserver/apply_report.py).

Controllers must share an Erlang cookie and a Corosync authkey. Both are derived here
from one site secret (role setting ``cluster_secret``, generated once by default) with
HMAC-SHA256 and a label each, so every controller, and a reprovisioned one, gets the
same keys without anyone copying them between nodes. They travel in the bundle's
``secrets/`` folder (mode 0600 in a 0700 folder on both sides), never in a template's
output or a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from provisioner.inventory import Node, Site
from provisioner.inventory.rolesettings import ControllerSettings
from provisioner.roles import controller
from provisioner.roles.common import (
    DB_CLIENT_DIR,
    Bundle,
    DeployFacts,
    controllers,
    node_context,
    render,
    settings_of,
)

#: Corosync's authkey length (corosync-keygen's default, 2048 bits)
COROSYNC_KEY_BYTES = 256


def derive(seed: bytes, label: str, size: int = 32) -> bytes:
    """``size`` bytes of HMAC-SHA256(seed, label || counter): one key per label."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hmac.new(seed, f"{label}:{counter}".encode(), hashlib.sha256).digest()
        counter += 1
    return out[:size]


def cluster_keys(site: Site, node: Node) -> dict[str, str]:
    """The controllers' shared keys, by the name apply.sh knows them by."""
    ref = settings_of(site, node, ControllerSettings).cluster_secret
    owner = f"node {node.name}: role {node.role} settings.cluster_secret"
    seed = site.secret(ref, owner).get_secret_value().encode()

    def fernet(label: str) -> str:  # a Fernet key: 32 bytes, URL-safe base64
        return base64.urlsafe_b64encode(derive(seed, label, 32)).decode()

    return {
        "ERLANG_COOKIE": derive(seed, "erlang-cookie", 20).hex().upper(),
        "COROSYNC_AUTHKEY_B64": base64.b64encode(
            derive(seed, "corosync-authkey", COROSYNC_KEY_BYTES)
        ).decode(),
        "KEYSTONE_DB_PASSWORD": derive(seed, "keystone-db-password", 24).hex(),
        "KEYSTONE_ADMIN_PASSWORD": derive(seed, "keystone-admin-password", 24).hex(),
        "KEYSTONE_FERNET_0": fernet("keystone-fernet-0"),
        "KEYSTONE_FERNET_1": fernet("keystone-fernet-1"),
        "KEYSTONE_CREDENTIAL_0": fernet("keystone-credential-0"),
        "KEYSTONE_CREDENTIAL_1": fernet("keystone-credential-1"),
    }


def keystone_admin_password(site: Site) -> str:
    """Keystone's bootstrap admin password (what ``openstack token issue`` uses)."""
    return cluster_keys(site, controllers(site)[0])["KEYSTONE_ADMIN_PASSWORD"]


def cluster_env(site: Site, node: Node) -> str:
    """The controllers' shared keys as a shell environment file (hex and base64 only)."""
    return "".join(f"{k}='{v}'\n" for k, v in cluster_keys(site, node).items())


def files(site: Site, node: Node, kind: str, facts: DeployFacts) -> Bundle:
    """The apply scripts of the node's role kind (and a controller's shared keys)."""
    common = node_context(site, node)
    out: Bundle = {"apply/lib.sh": render("common", "apply-lib.sh.j2", site, **common)}
    if kind == controller.KIND:
        bootstrap, decision = controller.galera_bootstraps(site, node, facts)
        settings = settings_of(site, node, ControllerSettings)
        out["apply/apply.sh"] = render(
            controller.KIND,
            "apply.sh.j2",
            site,
            bootstrap=bootstrap,
            decision=decision,
            first_deployment=facts.first_deployment,
            keyfile=settings.corosync_keyfile,
            db_client_dir=DB_CLIENT_DIR,
            **common,
        )
        out["secrets/cluster.env"] = cluster_env(site, node)
    else:
        out["apply/apply.sh"] = render(
            "common", "apply-files.sh.j2", site, role_kind=kind, **common
        )
    return out
