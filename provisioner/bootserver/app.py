"""The Flask application of the boot server's HTTP side."""

from __future__ import annotations

import importlib
import logging

from flask import Flask

from provisioner.bootserver import boot_routes, files, health
from provisioner.bootserver.context import ServerContext

log = logging.getLogger(__name__)

#: Blueprints written elsewhere; registered when their module is present.
OPTIONAL_BLUEPRINTS = (
    "provisioner.bootserver.ks_routes",
    "provisioner.bootserver.callback_routes",
)


def create_app(ctx: ServerContext) -> Flask:
    app = Flask("provisioner.bootserver")
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20  # callbacks are small
    app.extensions["provisioner"] = ctx
    for module in (boot_routes, files, health):
        app.register_blueprint(module.blueprint(ctx))
    for name in OPTIONAL_BLUEPRINTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but something it imports is missing
            log.debug("http: %s not present, its routes are not served", name)
            continue
        app.register_blueprint(module.blueprint(ctx))
    return app
