"""A family of named implementations (publishers, producers, …), declared once.

A declaration names the family (the key users and ``forge plugins`` see), the registrar its
``forge_register_<key>s`` hook receives, the protocol its implementations satisfy, the hook's
documentation and, for families users name in CUE, the CUE definition that lists the installed
names. Everything else is derived from the declarations: the registration hookspecs, the order
they are called in, the registry's families, discovery's installed names, the contract-test base
and the documentation self-check.

    WIDGET = declare(Family("widget", registrar=WidgetRegistrar, protocol=Widget, doc="..."))

A family is its key (``Family.PUBLISHER == "publisher"``), so it serialises and compares as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core.plugin.registry import Registrar

_DECLARED: dict[str, Family] = {}


class _Families(type):
    """Makes the declared families reachable as ``Family.PUBLISHER`` and iterable in order."""

    def __getattr__(cls, attribute: str) -> Family:
        family = _DECLARED.get(attribute.lower()) if attribute.isupper() else None
        if family is None:
            raise AttributeError(f"no family {attribute!r}; declared: {', '.join(_DECLARED) or 'none'}")
        return family

    def __iter__(cls) -> Iterator[Family]:
        return iter(list(_DECLARED.values()))

    def __len__(cls) -> int:
        return len(_DECLARED)


class Family(str, metaclass=_Families):
    """One family's declaration. Construct it, then :func:`declare` it."""

    registrar: type[Registrar]
    protocol: type | None
    doc: str
    cue: str | None

    def __new__(
        cls, key: str, *, registrar: type[Registrar], protocol: type | None, doc: str, cue: str | None = None
    ) -> Family:
        if not key.isidentifier() or key != key.lower():
            raise ValueError(f"a family key is a lower-case identifier, got {key!r}")
        family = super().__new__(cls, key)
        family.registrar, family.protocol, family.doc, family.cue = registrar, protocol, doc, cue
        return family

    @property
    def value(self) -> str:
        """The key, as ``Family.X.value`` gave it when families were an enum."""
        return str(self)

    @property
    def label(self) -> str:
        return self.replace("_", " ")

    @property
    def hook(self) -> str:
        """The registration hook's name: ``forge_register_<key>s``."""
        return f"forge_register_{self}s"

    @property
    def method(self) -> str | None:
        """The protocol's one method (what a contract calls), if the family has a protocol."""
        if self.protocol is None:
            return None
        return next(n for n in vars(self.protocol) if not n.startswith("_"))

    @classmethod
    def named(cls, key: str) -> Family:
        """The declared family with this key."""
        try:
            return _DECLARED[key]
        except KeyError:
            raise KeyError(f"no family {key!r}; declared: {', '.join(_DECLARED)}") from None

    def __repr__(self) -> str:
        return f"Family.{self.upper()}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Family.named, (str(self),))


def declare(family: Family) -> Family:
    """Add a family; its registration hook is called after those declared before it."""
    if family in _DECLARED:
        raise ValueError(f"family {family!r} is already declared")
    if "family" in vars(family.registrar):
        raise ValueError(f"{family.registrar.__name__} is already the registrar of {family.registrar.family!r}")
    family.registrar.family = family
    _DECLARED[str(family)] = family
    return family


def withdraw(family: Family) -> None:
    """Remove a declared family again (tests that declare one of their own)."""
    if _DECLARED.get(str(family)) is family:
        del _DECLARED[str(family)]
        del family.registrar.family
