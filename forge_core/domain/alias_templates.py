"""Custom release aliases: the templates a project declares in ``release.aliases`` of its
``project.cue``, and their expansion by the release job once the release has its number.

A template is literal alias characters (letters, digits, ``.``, ``_``, ``/``, ``-``) and
placeholders in braces::

    release: aliases: ["latest", "{branch}-latest", "sha-{shortCommit}", "v{version}", "build-{number}"]

Placeholders: ``{number}`` (the release number), ``{branch}``, ``{tag}`` (as written),
``{version}`` (the tag's version), ``{commit}``, ``{shortCommit}`` (its first 7 characters) and
``{project}``. A template naming a value the release does not have (``{tag}`` of a branch
release) gives no alias; a value's characters an alias cannot hold become ``-`` (``+`` becomes
``_``, as in a version's build metadata). Discovery checks the templates
(:func:`check_templates`, each problem at ``release.aliases.<index>``); the release job expands them
(:func:`expand_templates`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PLACEHOLDERS = ("number", "branch", "tag", "version", "commit", "shortCommit", "project")
MAX_TEMPLATES = 32
MAX_ALIAS = 128
ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
"""An alias as the API takes it (``schemas.AliasName``)."""

_TOKEN = re.compile(r"\{([^{}]*)\}|([^{}]+)|([{}])")
_LITERAL = re.compile(r"^[A-Za-z0-9._/-]+$")
_NUMBER = re.compile(r"^[0-9]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]")


class AliasTemplateError(ValueError):
    """A template that cannot be used; ``index`` is its position in ``release.aliases``."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class AliasFacts:
    """What a template may name, as the release job knows it."""

    number: int
    project: str
    commit: str
    branch: str | None = None
    tag: str | None = None
    version: str | None = None

    def value(self, name: str) -> str | None:
        values = {
            "number": str(self.number), "branch": self.branch, "tag": self.tag, "version": self.version,
            "commit": self.commit, "shortCommit": self.commit[:7], "project": self.project,
        }
        return values[name] or None


@dataclass(frozen=True)
class Skipped:
    """A template that gave no alias for this release, and why."""

    template: str
    reason: str


def _parts(template: str, index: int) -> list[tuple[str, str]]:
    """The template as ("literal", text) and ("placeholder", name) parts, or the problem."""
    if not template:
        raise AliasTemplateError(index, "an alias template is empty")
    parts: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(template):
        name, literal, brace = match.groups()
        if brace is not None:
            raise AliasTemplateError(index, f"alias template {template!r}: unmatched {brace!r} "
                                     "(placeholders are written {number}, {branch}, …)")
        if literal is not None:
            if not _LITERAL.match(literal):
                bad = sorted(set(_UNSAFE.findall(literal)))
                raise AliasTemplateError(index, f"alias template {template!r}: {', '.join(map(repr, bad))} cannot be "
                                         "in an alias (letters, digits, '.', '_', '/', '-')")
            parts.append(("literal", literal))
        else:
            if name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                raise AliasTemplateError(index, f"alias template {template!r}: unknown placeholder {{{name}}}; "
                                         f"known: {known}")
            parts.append(("placeholder", name))
    return parts


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """The templates of ``release.aliases``, checked: syntax, known placeholders, alias characters,
    not a bare number (numbers are the releases'), each once, at most :data:`MAX_TEMPLATES`."""
    if len(templates) > MAX_TEMPLATES:
        raise AliasTemplateError(MAX_TEMPLATES, f"at most {MAX_TEMPLATES} alias templates ({len(templates)} given)")
    seen: set[str] = set()
    for index, template in enumerate(templates):
        parts = _parts(template, index)
        kind, first = parts[0]
        if kind == "literal" and not first[0].isalnum():
            raise AliasTemplateError(index, f"alias template {template!r} must start with a letter, a digit or a "
                                     "placeholder")
        if all(kind == "literal" for kind, _ in parts) and len(template) > MAX_ALIAS:
            raise AliasTemplateError(index, f"alias template {template!r} is longer than {MAX_ALIAS} characters")
        if _NUMBER.match(template) or template == "{number}":
            raise AliasTemplateError(index, f"alias template {template!r} is a bare number; numeric aliases are the "
                                     "release numbers (write e.g. 'build-{number}')")
        if template in seen:
            raise AliasTemplateError(index, f"alias template {template!r} is declared twice")
        seen.add(template)
    return tuple(templates)


def expand_templates(templates: Sequence[str], facts: AliasFacts) -> tuple[tuple[str, ...], tuple[Skipped, ...]]:
    """The aliases the templates give this release (in order, each once), and the templates that
    gave none with why. Raises :class:`AliasTemplateError` for a template discovery would refuse."""
    aliases: list[str] = []
    skipped: list[Skipped] = []
    for index, template in enumerate(templates):
        text, missing = [], []
        for kind, part in _parts(template, index):
            if kind == "literal":
                text.append(part)
                continue
            value = facts.value(part)
            if value is None:
                missing.append("{" + part + "}")
            else:
                text.append(_UNSAFE.sub("-", value.replace("+", "_")))
        if missing:
            skipped.append(Skipped(template, f"release {facts.number} has no {', '.join(missing)}"))
            continue
        alias = "".join(text)
        if _NUMBER.match(alias):
            skipped.append(Skipped(template, f"it gives {alias!r}, a bare number (the numbers are the releases')"))
        elif not ALIAS.match(alias):
            why = f"longer than {MAX_ALIAS} characters" if len(alias) > MAX_ALIAS else "not a valid alias"
            skipped.append(Skipped(template, f"it gives {alias[:40]!r}…, {why}" if len(alias) > 40
                                   else f"it gives {alias!r}, {why}"))
        elif alias not in aliases:
            aliases.append(alias)
    return tuple(aliases), tuple(skipped)
