"""Deprecated: the registry and the registrars live in :mod:`forge_core.plugin.registry`, the
families in :mod:`forge_core.plugin.families` (plugins import them from :mod:`forge_core.sdk`).
Kept so that code importing this path still works."""

from __future__ import annotations

import warnings
from typing import Any

from forge_core.plugin.family import Family
from forge_core.plugin.registry import (
    NAME_PATTERN,
    ArtifactTypeRegistrar,
    Factory,
    JobHandlerRegistrar,
    NotifierRegistrar,
    Owner,
    ProducerRegistrar,
    PublisherRegistrar,
    Registrar,
    Registration,
    Registry,
    RendererRegistrar,
    StepRunnerRegistrar,
    TriggerRegistrar,
)

warnings.warn(
    "forge_core.ports.registry is deprecated: import registrars and Family from forge_core.sdk "
    "(the registry is in forge_core.plugin.registry)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "NAME_PATTERN",
    "ArtifactTypeRegistrar",
    "Factory",
    "Family",
    "JobHandlerRegistrar",
    "NotifierRegistrar",
    "Owner",
    "ProducerRegistrar",
    "PublisherRegistrar",
    "Registrar",
    "Registration",
    "Registry",
    "RendererRegistrar",
    "StepRunnerRegistrar",
    "TriggerRegistrar",
]


def __getattr__(name: str) -> Any:
    if name == "REGISTRARS":  # registration hook name -> registrar, derived from the families
        return {family.hook: family.registrar for family in Family}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
