"""The ASGI factory uvicorn imports (``forge api``): settings and plugins from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings import load_settings


def application() -> FastAPI:
    settings = load_settings()
    return create_app(settings, load_plugins(settings.plugins))
