"""Every setting as the environment variable that sets it, read from the Settings model itself, so
docs/operations.md's table and the Helm chart's variables are checked against the code, not a copy.

``FORGE_<SECTION>__<FIELD>`` (nested sections add ``__<FIELD>``); a field holding a mapping or a
list of models is one variable with a JSON value.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from forge_core.settings import Settings

PREFIX = "FORGE_"

SERVICE_SECTIONS: dict[str, tuple[str, ...]] = {
    "forge api": ("state_dir", "plugins", "database", "auth", "api", "leases", "orchestrator", "nats", "storage",
                  "server.repositories", "server.clone_url", "server.poll_seconds"),
    "forge worker": ("state_dir", "plugins", "nats", "storage", "worker", "api.url", "api.token", "secrets",
                     "git", "cue", "oci", "render", "tracking"),
    "forge dispatch": ("nats", "storage"),
    "forge notifier": ("state_dir", "plugins", "database", "api.notifier"),
    "forge streams apply": ("nats",),
    "forge db upgrade": ("state_dir", "database"),
    "forge server": ("state_dir", "plugins", "database", "auth", "api", "nats", "storage", "worker", "secrets",
                     "git", "cue", "oci", "render", "tracking", "orchestrator", "server", "leases"),
    "forge workflow close": ("api.url", "api.token"),
    "forge workflow release|deploy": ("api.url", "api.token", "nats", "storage", "worker.cache_dir", "render"),
}
"""What each service reads: top-level sections, or dotted parts of one (``api.url``)."""


@dataclass(frozen=True)
class SettingVariable:
    name: str            # FORGE_NATS__ACK_WAIT__CI
    path: tuple[str, ...]  # ("nats", "ack_wait", "ci")
    type: str
    default: str
    description: str
    secret: bool


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds directly (``X`` or ``X | None``), else None."""
    candidates = [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(candidates) == 1 and isinstance(candidates[0], type) and issubclass(candidates[0], BaseModel):
        return candidates[0]
    return None


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    name = text or str(annotation)
    for module in ("typing.", "pathlib.", "pydantic.types.", "pydantic.networks.", "Annotated["):
        name = name.replace(module, "")
    return name.split(", NoDecode")[0]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)"
    if field.default is PydanticUndefined:
        return "(required)"
    if field.default is None:
        return "unset"
    # Defaults under the home folder are written with ~, so the table is the same on every machine.
    text = repr(field.default) if isinstance(field.default, str) else str(field.default)
    return text.replace(str(Path.home()), "~")


def _walk(model: type[BaseModel], path: tuple[str, ...]) -> list[SettingVariable]:
    found: list[SettingVariable] = []
    section = (model.__doc__ or "").strip().split("\n")[0] if path else ""
    for name, field in model.model_fields.items():
        here = (*path, name)
        nested = section_model(field.annotation)
        if nested is not None:  # an optional section too: its fields are set the same way
            found.extend(_walk(nested, here))
            continue
        found.append(SettingVariable(
            name=PREFIX + "__".join(part.upper() for part in here),
            path=here,
            type=_type_name(field.annotation),
            default=_default(field),
            description=" ".join((field.description or section).split()),
            secret="SecretStr" in str(field.annotation),
        ))
    return found


def setting_variables() -> list[SettingVariable]:
    """Every variable that sets one setting, in the model's order."""
    return _walk(Settings, ())


def variable(name: str) -> SettingVariable | None:
    """The setting ``name`` sets, or None when no setting has that variable. A variable naming a
    whole section (``FORGE_API__NOTIFIER`` as JSON) is not listed; set its fields instead."""
    return next((v for v in setting_variables() if v.name == name), None)


def services_reading(setting: SettingVariable) -> list[str]:
    return [service for service, parts in SERVICE_SECTIONS.items()
            if any(setting.path[: len(part.split("."))] == tuple(part.split(".")) for part in parts)]


def markdown_table() -> str:
    """The settings table of docs/operations.md."""
    rows = ["| variable | type | default | read by | what |", "|---|---|---|---|---|"]
    for v in setting_variables():
        what = v.description + (" **Secret**: give it from a Secret." if v.secret else "")
        readers = ", ".join(f"`{s}`" for s in services_reading(v))
        cells = [f"`{v.name}`", v.type.replace("|", "\\|"), f"`{v.default}`", readers, what.replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
