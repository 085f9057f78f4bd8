"""Catalyst Forge core.

Kept import-light on purpose: `forge --help` must start fast, so nothing here pulls in pydantic,
stevedore or the CLI. Plugin authors import from :mod:`forge_core.sdk`.
"""

__version__ = "0.1.0"
DISTRIBUTION = "catalyst-forge-core"
