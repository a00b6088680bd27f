"""The site inventory: typed models of site.yaml, secrets and validation."""

from provisioner.inventory.loader import load_site, validate_site_file
from provisioner.inventory.models import Node, Role, Site
from provisioner.inventory.problems import Problem

__all__ = ["Node", "Problem", "Role", "Site", "load_site", "validate_site_file"]
