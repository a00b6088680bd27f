"""The daemon side of `provisioner serve`: jobs, the REST API, its token."""
