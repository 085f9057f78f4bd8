"""Canonical resources layers, read without a YAML parser (the Argo CD plugin's cold path imports
this, not PyYAML, unless a folder has an env file or a pointer not written by the platform).

A Release image whose metadata says ``resources_canonical`` holds one file per resource, each
written by :func:`~forge_core.domain.resource_yaml.render_one` — what the CMP prints for it. Such a
file shows its identity in its text (:func:`canonical_identity`), so :func:`print_canonical`
prints the layer's files as they are, in the CMP's order, without parsing or writing YAML; a file
that does not show it sends the layer to the parser (:mod:`forge_core.domain.resources`). Also
here, for both: the order the CMP prints resources in (:func:`in_print_order`) and the errors of
a resources layer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from forge_core.domain.errors import ForgeError

YAML_SUFFIXES = (".yaml", ".yml")


class ResourceError(ForgeError):
    """A document of a resources layer that is not a Kubernetes object; ``where`` is file#document."""

    code = "invalid_resource"


class ArchiveError(ForgeError):
    """An archive refused: ``where`` is the entry (or the archive), ``details["rule"]`` the rule broken."""

    code = "unsafe_archive"

    def __init__(self, message: str, *, entry: str | None, rule: str):
        self.entry, self.rule = entry, rule
        super().__init__(f"{message} (rule: {rule})", where=entry, details={"entry": entry, "rule": rule})


SortKey = tuple[str, str, str, str, int]
"""(kind, name, namespace or "", file, document): the order the CMP prints resources in."""


def in_print_order(keys: Sequence[SortKey]) -> list[int]:
    """The positions of ``keys`` sorted by kind and name (then namespace, file, document, so equal
    pairs stay in a fixed order); ResourceError when two share kind, namespace and name (Argo CD
    could apply only one of them)."""
    seen: dict[tuple[str, str, str], SortKey] = {}
    for key in keys:
        kind, name, namespace, file, document = key
        first = seen.setdefault((kind, namespace, name), key)
        if first != key:
            raise ResourceError(f"{kind} {name!r} is defined twice (also in {first[3]}#{first[4]})",
                                where=f"{file}#{document}")
    return sorted(range(len(keys)), key=keys.__getitem__)


def streamable(text: bytes) -> bool:
    """Whether a canonical layer's one-document file can be printed as it is, one file after
    another: it opens with its own ``---`` (no directives before it) and ends a line."""
    return text.startswith(b"---\n") and text.endswith(b"\n")


# What a canonical file's identity fields look like, written by render_one: a plain scalar, or one
# quoted without escapes (PyYAML quotes strings that would read as something else).
_VALUE = r"(?:[A-Za-z0-9][A-Za-z0-9._/-]*|'[A-Za-z0-9._/-]*'|\"[A-Za-z0-9._/-]*\")"
_TOP_LEVEL = re.compile(rf"^(apiVersion|kind): ({_VALUE})$|^(metadata):$", re.MULTILINE)
_METADATA = re.compile(rf"^  (name|namespace): ({_VALUE})$", re.MULTILINE)
_MARKERS = re.compile(r"^(?:---|\.\.\.)(?: |$)|^%", re.MULTILINE)
_NEXT_TOP_LEVEL = re.compile(r"^[^ \n]", re.MULTILINE)
# PyYAML's implicit resolvers (yaml/resolver.py, YAML 1.1) for the plain scalars above: a plain
# value matching one is read as a boolean, number, null or date, not a string (a test compares).
_NOT_A_STRING = r"""^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |<<|~|null|Null|NULL|=|
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"""


# PyYAML picks its resolvers by a scalar's first character: one that starts with a letter can only
# be read as a boolean or null, so those are looked up without compiling the pattern above.
_LETTER_FIRST_NOT_STRINGS = frozenset({"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
                                       "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL"})


@functools.cache
def _not_a_string() -> re.Pattern[str]:
    return re.compile(_NOT_A_STRING, re.X)


def plain_string(written: str) -> str | None:
    """``written`` when YAML reads that plain scalar as a string; None when as anything else."""
    if written[:1].isascii() and written[:1].isalpha():
        return None if written in _LETTER_FIRST_NOT_STRINGS else written
    return None if _not_a_string().match(written) else written


def _scalar(written: str) -> str | None:
    """The string a written identity value reads as; None when YAML would read it as another type."""
    if written[0] in "'\"":
        return written[1:-1]
    return plain_string(written)


def canonical_identity(name: str, data: bytes) -> SortKey | None:
    """The print-order key of a canonical file (one resource as
    :func:`~forge_core.domain.resource_yaml.render_one` writes it), read from its text without
    parsing it: its one ``---``, the top-level ``apiVersion``, ``kind`` and ``metadata`` lines and
    metadata's ``name`` and ``namespace``. None when the text does not have that shape (then the
    file is parsed and its documents written again), or holds a ``*`` (an alias is refused only by
    parsing)."""
    if not streamable(data) or b"*" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(_MARKERS.findall(text)) != 1:
        return None
    top: dict[str, str] = {}
    metadata_at = -1
    for match in _TOP_LEVEL.finditer(text):
        field = match.group(1) or match.group(3)
        if field in top:
            return None
        top[field] = match.group(2) or ""
        if field == "metadata":
            metadata_at = match.end()
    if len(top) != 3:
        return None
    following = _NEXT_TOP_LEVEL.search(text, metadata_at + 1)
    block = text[metadata_at:following.start() if following else len(text)]
    found: dict[str, str] = {}
    for match in _METADATA.finditer(block):
        if match.group(1) in found:
            return None
        found[match.group(1)] = match.group(2)
    api_version, kind = _scalar(top["apiVersion"]), _scalar(top["kind"])
    resource = _scalar(found["name"]) if "name" in found else None
    namespace = _scalar(found["namespace"]) if "namespace" in found else ""
    if not api_version or not kind or not resource or namespace is None:
        return None
    return kind, resource, namespace, name, 1


def print_canonical(files: Sequence[tuple[str, bytes]]) -> str | None:
    """A canonical layer's files printed as they are, in kind/name order; None unless every file
    is one resource :func:`canonical_identity` reads and no two share kind, namespace and name (then
    the layer is parsed, and refused or written again, as any other)."""
    keys = []
    for name, data in files:
        key = canonical_identity(name, data)
        if key is None:
            return None
        keys.append(key)
    if not keys:
        return None
    try:
        order = in_print_order(keys)
    except ResourceError:
        return None
    return "".join(files[position][1].decode() for position in order)
