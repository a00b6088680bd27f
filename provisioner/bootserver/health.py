"""GET /healthz: the HTTP side answers, the site is loaded and the store reachable."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from provisioner.bootserver.context import ServerContext


def blueprint(ctx: ServerContext) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        site = ctx.site()
        try:
            ctx.store.all()
            store_ok = True
        except Exception:  # any store failure makes us unhealthy
            store_ok = False
        body = {
            "status": "ok" if store_ok else "degraded",
            "site": site.site.name,
            "nodes": len(site.nodes),
            "site_generation": ctx.sites.generation,
            "store": "ok" if store_ok else "unreachable",
        }
        return jsonify(body), 200 if store_ok else 503

    return bp
