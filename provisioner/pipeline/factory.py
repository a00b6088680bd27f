"""The one wiring of the pipeline: what `provisioner serve`'s daemon and the CLI's
in-process runs both use, so the two can never be put together differently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provisioner.inventory import Site
from provisioner.pipeline.hooks import DEFAULT_TIMEOUT_S, HookRunner
from provisioner.pipeline.operations import Operations
from provisioner.pipeline.runner import Pipeline, Timeouts
from provisioner.pipeline.site_backends import SiteBackends
from provisioner.state.store import Store


def build_operations(
    store: Store,
    site: Callable[[], Site],
    site_path: Path,
    state_dir: Path,
    actor: str,
    hook_timeout: float | None = None,
) -> Operations:
    """Pipeline + operations for a site: its timeouts, retries and fan-out; its power
    settings go to each node's driver, built once per deployment (site_backends.py).

    ``site`` is called for the current site (a server follows edits of site.yaml);
    the settings that shape the wiring are read from it once, here.
    """
    settings = site().pipeline
    pipeline = Pipeline(
        store,
        site,
        SiteBackends(state_dir, deployment_of=lambda name: _deployment(store, name)),
        timeouts=Timeouts(**settings.timeouts.model_dump(), poll=settings.poll_interval),
        power_retries=settings.power_retries,
        actor=actor,
        sleep=store.changes.wait,  # woken by the HTTP side's events on PostgreSQL
        hooks=HookRunner(
            site, store, state_dir, site_path, timeout_s=hook_timeout or DEFAULT_TIMEOUT_S
        ),
    )
    return Operations(pipeline, fanout=settings.fanout)


def _deployment(store: Store, name: str) -> str | None:
    """A node's deployment is its reservation: one per provision, resume or rerun."""
    held = store.reservation(name)
    return held.token if held is not None else None
