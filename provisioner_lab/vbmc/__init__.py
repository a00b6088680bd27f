"""Virtual BMC: an IPMI-over-LAN BMC that powers a qemu node (or a simulated one)."""
