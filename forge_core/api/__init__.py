"""The Platform API (FastAPI): an entry point, like the CLI. ``create_app`` builds it."""
