"""The Flask application of the boot server's HTTP side."""

from __future__ import annotations

from flask import Flask

from provisioner.bootserver import (
    boot_routes,
    callback_routes,
    discovery_routes,
    files,
    health,
    jsonlimits,
    ks_routes,
)
from provisioner.bootserver.context import ServerContext


def create_app(ctx: ServerContext) -> Flask:
    app = Flask("provisioner.bootserver")
    jsonlimits.install(app)  # callbacks are small and flat
    app.extensions["provisioner"] = ctx
    for module in (boot_routes, files, health, ks_routes, callback_routes, discovery_routes):
        app.register_blueprint(module.blueprint(ctx))
    fast_path = boot_routes.wsgi_fast_path(app.wsgi_app, app.extensions[boot_routes.FAST_PATH_KEY])
    app.wsgi_app = fast_path  # type: ignore[method-assign,assignment]
    return app
