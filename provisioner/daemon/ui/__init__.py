"""The web dashboard served by `provisioner serve` beside the admin API.

Server-rendered pages (Jinja templates here), one small script and one
stylesheet (static/), no build step and no third-party JavaScript: the page
works on an air-gapped provisioning network. It reads through the same store
and site as the admin API and starts the same operations (see app.py).
"""
