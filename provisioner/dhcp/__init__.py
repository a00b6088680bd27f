"""dnsmasq host entries: the one writer of host files and of reloading dnsmasq."""
