"""Durations as CUE and Go write them (``90s``, ``10m``, ``1h30m``).

A module of its own so that both the configuration (:mod:`forge_core.domain.config`) and the
promotion rules (:mod:`forge_core.domain.promotion`, which the configuration imports) can use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """A Go-style duration (``90s``, ``10m``, ``1h30m``) as a timedelta; ValueError if it is not one."""
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like '10m' or '1h30m'")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
