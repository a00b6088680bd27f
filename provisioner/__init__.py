"""provisioner: bare-metal provisioning for an HA OpenStack private cloud."""

__version__ = "0.1.0"
