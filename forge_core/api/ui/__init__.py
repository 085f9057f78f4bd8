"""The web console, served by the Platform API under ``/ui``: server-rendered pages (Jinja2)
with htmx (vendored in ``static/`` with its license) for live parts; no front-end build step.

It uses the API's own authorization (:mod:`.session`), stores and use cases, so it shows and does
what the same principal could through ``/v1``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the console on ``app`` (its pages under /ui, its static files under /ui/static)."""
    from forge_core.api.ui.pages import router

    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router)
