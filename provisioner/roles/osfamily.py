"""What differs between the OS families a profile can install: one table, not ifs in templates.

Templates get ``os`` (the node's :class:`OsFamily`) and use its fields; a generator
picks per-family files (name, template) from here too. A new difference between
RHEL-family and Debian/Ubuntu systems is one more field in this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.errors import RoleConfigError
from provisioner.inventory import Node, Site


@dataclass(frozen=True)
class OsFamily:
    name: str
    #: the Galera 4 wsrep provider library of the distribution's MariaDB packages
    galera_provider: str
    #: where the distribution's MariaDB reads extra server config (galera.cnf goes there)
    mysql_conf_dir: str
    #: memcached's options: bundle path, template and the file it replaces on the node
    memcached_bundle: str
    memcached_template: str
    memcached_target: str
    memcached_user: str
    #: the systemd unit of cinder-backup (on the storage nodes, beside cinder-volume)
    cinder_backup_unit: str
    #: Horizon's local settings (Python), and where the web server's Listen lines go
    horizon_settings: str
    apache_ports_file: str
    #: the IPsec implementation the distribution packages for neutron-vpnaas
    vpn_device_driver: str


VPN_DRIVERS = "neutron_vpnaas.services.vpn.device_drivers"

FAMILIES: dict[str, OsFamily] = {
    "rhel": OsFamily(
        name="rhel",
        galera_provider="/usr/lib64/galera/libgalera_smm.so",
        mysql_conf_dir="/etc/my.cnf.d",
        memcached_bundle="memcached/memcached",
        memcached_template="memcached.sysconfig.j2",
        memcached_target="/etc/sysconfig/memcached",
        memcached_user="memcached",
        cinder_backup_unit="openstack-cinder-backup",
        horizon_settings="/etc/openstack-dashboard/local_settings",
        apache_ports_file="/etc/httpd/conf.d/openstack-listen.conf, and no Listen in httpd.conf",
        vpn_device_driver=f"{VPN_DRIVERS}.libreswan_ipsec.LibreSwanDriver",
    ),
    "debian": OsFamily(
        name="debian",
        galera_provider="/usr/lib/galera/libgalera_smm.so",
        mysql_conf_dir="/etc/mysql/mariadb.conf.d",
        memcached_bundle="memcached/memcached.conf",
        memcached_template="memcached.conf.j2",
        memcached_target="/etc/memcached.conf",
        memcached_user="memcache",
        cinder_backup_unit="cinder-backup",
        horizon_settings="/etc/openstack-dashboard/local_settings.py",
        apache_ports_file="/etc/apache2/ports.conf, replacing it",
        vpn_device_driver=f"{VPN_DRIVERS}.strongswan_ipsec.StrongSwanDriver",
    ),
}


def os_family(site: Site, node: Node) -> OsFamily:
    """The OS family of the node's profile (node.profile, else defaults.profile).

    An image profile installs a Debian image (mmdebstrap) whatever its ``os_family``
    (which then only picks the installer's boot arguments): its bundle is Debian's."""
    profile = site.profile_of(node)
    if profile is None or profile not in site.profiles:
        raise RoleConfigError(f"node {node.name}: profile {profile!r} is not defined in profiles")
    if site.profiles[profile].image is not None:
        return FAMILIES["debian"]
    return FAMILIES[site.profiles[profile].os_family]
