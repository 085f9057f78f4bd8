"""The settings an implementation declares, and what is wrong with a configuration's settings.

A publisher, producer or step runner may declare the schema of its settings (``settings=`` on
its registrar's ``add``) as a pydantic model; :class:`SettingsModel` is the base that fits CUE:
unknown keys are errors and fields are written in camelCase (``image_ref`` is ``imageRef``).
:func:`settings_problems` checks a value against a schema and says, per key, what is wrong, with
the key's path so the caller can point at its line. Values are never repeated in a message (a
setting may hold something private); their kind is.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

Path = tuple[str | int, ...]


class SettingsModel(BaseModel):
    """Base of settings schemas: closed (a typo is an error) and camelCase keys, as CUE writes them."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True)
class SettingsProblem:
    """One key that does not fit the schema: its path inside the settings, and what is wrong."""

    path: Path
    message: str

    def describe(self) -> str:
        return f"{dotted(('settings', *self.path))}: {self.message}"


def dotted(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def is_settings_schema(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def settings_problems(schema: type[BaseModel], value: Mapping[str, Any]) -> list[SettingsProblem]:
    """Every problem of ``value`` against ``schema``, in the order pydantic finds them."""
    try:
        schema.model_validate(value)
    except ValidationError as exc:
        return [_problem(schema, error) for error in exc.errors(include_url=False, include_input=True)]
    return []


def _problem(schema: type[BaseModel], error: Any) -> SettingsProblem:
    path: Path = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        keys = field_names(_model_at(schema, path[:-1]))
        expected = f"expected one of: {', '.join(keys)}" if keys else "this implementation takes no settings here"
        return SettingsProblem(path, f"unknown field; {expected}")
    if kind == "missing":
        return SettingsProblem(path, "required field is missing")
    got = type(error.get("input")).__name__
    return SettingsProblem(path, f"{error['msg'][0].lower()}{error['msg'][1:]} (got {_KINDS.get(got, got)})")


_KINDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "list": "a list",
          "dict": "a struct", "NoneType": "null"}


def field_names(model: type[BaseModel] | None) -> list[str]:
    """The keys ``model`` accepts, as a configuration writes them (aliases first)."""
    if model is None:
        return []
    return sorted(info.alias or name for name, info in model.model_fields.items())


def _model_at(schema: type[BaseModel], path: Path) -> type[BaseModel] | None:
    """The model that holds the last key of ``path`` (following fields, list items, dict values)."""
    current: Any = schema
    for part in path:
        current = _models_of(current)
        if is_settings_schema(current) and isinstance(part, str):
            info = next((i for n, i in current.model_fields.items() if part in (n, i.alias)), None)
            current = info.annotation if info is not None else None
        else:
            current = _item_type(current)
    current = _models_of(current)
    return current if is_settings_schema(current) else None


def _models_of(annotation: Any) -> Any:
    """The model inside ``X | None`` (or the annotation itself)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        models = [a for a in typing.get_args(annotation) if is_settings_schema(a)]
        return models[0] if models else annotation
    return annotation


def _item_type(annotation: Any) -> Any:
    """What a list holds, or a mapping's values."""
    args = typing.get_args(_models_of(annotation))
    return _models_of(args[-1]) if args else None
