"""The boot server: DHCP (dnsmasq), TFTP (tftpy, iPXE only) and HTTP (flask)."""
