"""The built-in virtual lab: node images, network, qemu nodes (test equipment)."""
