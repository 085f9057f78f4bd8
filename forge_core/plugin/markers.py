"""The pluggy markers of project ``forge``: ``hookspec`` for the core, ``hookimpl`` for plugins.

Typed as pluggy's own marker classes so that a plugin's ``@hookimpl`` and
``@hookimpl(tryfirst=True)`` keep their functions' signatures under ``mypy --strict``.
"""

from __future__ import annotations

from typing import Final

import pluggy

PROJECT: Final = "forge"
hookspec: Final[pluggy.HookspecMarker] = pluggy.HookspecMarker(PROJECT)
hookimpl: Final[pluggy.HookimplMarker] = pluggy.HookimplMarker(PROJECT)
