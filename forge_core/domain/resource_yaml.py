"""The YAML of Kubernetes resources, read and written without pydantic (the Argo CD plugin's cold
path imports this, and only this, of the domain's YAML rules).

Reading: libyaml's safe loader where PyYAML has it; anchors and aliases refused (a few bytes of
aliases can expand into gigabytes on output); each document a mapping with ``apiVersion``,
``kind`` and ``metadata.name`` (:func:`resource_identity`). Writing (:func:`dump_manifests`):
``---``-separated, no aliases, and strings a YAML 1.2 reader (Go's, in kubectl and Argo CD) would
take for numbers, booleans or null quoted. :func:`render_one` is what the CMP prints for one
resource: the release writer writes each resources-layer file with it, so the plugin can print a
canonical layer's files as they are (:func:`streamable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from yaml.events import AliasEvent

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


# libyaml's parser where PyYAML has it: several times faster than the pure-Python one.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def refuse_aliases(text: str) -> None:
    """A ConstructorError at the first alias of ``text``. An alias is written ``*name``: a text
    without ``*`` holds none, and is not parsed a second time."""
    if "*" not in text:
        return
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, AliasEvent):
            mark: Any = event.start_mark  # libyaml's Mark, which the stubs do not count as one
            raise yaml.constructor.ConstructorError(None, None, "YAML aliases are not accepted in resources", mark)


def load_documents(name: str, data: bytes) -> list[tuple[int, Any]]:
    """The non-empty documents of the file ``name`` as (1-based position, value); ResourceError
    naming the file (and line) when it is not UTF-8, not YAML, or holds an alias."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ResourceError(f"not UTF-8 text (byte {error.start})", where=name) from error
    try:
        refuse_aliases(text)
        return [(index, body) for index, body in enumerate(yaml.load_all(text, Loader=LOADER), start=1)
                if body is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ResourceError(f"not valid YAML: {getattr(error, 'problem', None) or error}", where=where) from error


def resource_identity(body: object, file: str, index: int) -> tuple[str, str, str | None]:
    """(kind, metadata.name, metadata.namespace) of a document that is a Kubernetes object;
    ResourceError naming ``file#index`` and the field otherwise."""
    where = f"{file}#{index}"
    if not isinstance(body, dict):
        raise ResourceError(f"a resource is a mapping, got {type(body).__name__}", where=where)
    for field in ("apiVersion", "kind"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise ResourceError(f"{field} is missing or not a string", where=f"{where}: {field}")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ResourceError("metadata.name is missing or not a string", where=f"{where}: metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ResourceError("metadata.namespace is not a string", where=f"{where}: metadata.namespace")
    return body["kind"], metadata["name"], namespace


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
_STR = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()


def _scalar(written: str) -> str | None:
    """The string a written identity value reads as; None when YAML would read it as another type."""
    if written[0] in "'\"":
        return written[1:-1]
    tag = _resolver.resolve(yaml.ScalarNode, written, (True, False))  # type: ignore[no-untyped-call]
    return written if tag == _STR else None


def canonical_identity(name: str, data: bytes) -> SortKey | None:
    """The print-order key of a canonical file — one resource as :func:`render_one` writes it —
    read from its text without parsing it: its one ``---``, the top-level ``apiVersion``, ``kind``
    and ``metadata`` lines and metadata's ``name`` and ``namespace``. None when the text does not
    have that shape (then the file is parsed and its documents written again), or holds a ``*``
    (an alias is refused only by parsing)."""
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


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is one resource exactly as :func:`render_one` writes it (the release writer
    asks before it says so in the metadata)."""
    try:
        documents = load_documents("file", data)
    except ResourceError:
        return False
    return len(documents) == 1 and isinstance(documents[0][1], dict) and render_one(documents[0][1]).encode() == data


# Plain scalars a YAML 1.2 reader (Go's, in kubectl and Argo CD) would not read as strings, beyond
# the YAML 1.1 ones PyYAML already quotes: 1e3, 0o17, 0x1F, .inf, null spellings, etc.
_YAML12_NON_STRING = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(inf|Inf|INF)"
    r"|\.(nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|"
)


# libyaml's emitter where PyYAML has it: the same bytes as the pure-Python one, several times faster
# (the CMP prints a release's resources on every Argo CD refresh).
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SafeDumper(_Dumper):  # type: ignore[misc]  # a base chosen at import
    """No anchors or aliases (a repeated object is written again), and strings that another YAML
    reader could take for numbers, booleans or null are quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _YAML12_NON_STRING.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


SafeDumper.add_representer(str, _represent_str)


def dump_manifests(manifests: Iterable[Mapping[str, Any]], *, sort_keys: bool = False) -> str:
    """``---``-separated YAML of ``manifests``, keys in the author's order (or sorted): same input,
    same bytes."""
    return yaml.dump_all(list(manifests), Dumper=SafeDumper, sort_keys=sort_keys, explicit_start=True,
                         default_flow_style=False, allow_unicode=True, width=4096)


def render_one(manifest: Mapping[str, Any]) -> str:
    """One resource as the CMP prints it: its own ``---`` document, keys sorted."""
    return dump_manifests([manifest], sort_keys=True)
