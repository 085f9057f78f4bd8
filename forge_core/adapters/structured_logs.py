"""Structured JSON logs, one event per line, with the request id bound as context."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

_configured = False


def configure(level: str = "INFO", path: Path | None = None) -> None:
    """JSON lines on stdout (a service), or appended to ``path`` (the CLI, whose terminal is for people)."""
    global _configured
    if _configured:
        return
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler: logging.Handler = logging.StreamHandler(sys.stdout)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    forge = logging.getLogger("forge")
    forge.handlers[:] = [handler]
    forge.setLevel(level)
    forge.propagate = False
    _configured = True
