"""Who is calling and what they may do (framework-free; tokens are checked in adapters.auth)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from forge_core.services.errors import AuthorizationFailed


@dataclass(frozen=True)
class Principal:
    subject: str
    permissions: frozenset[str]
    issuer: str

    def allows(self, permission: str) -> bool:
        return "admin" in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.allows(permission):
            raise AuthorizationFailed(
                f"{self.subject} lacks the {permission!r} permission",
                where="Authorization",
                details={"required": permission, "granted": sorted(self.permissions)},
            )


def permissions_of(roles: Iterable[str], mapping: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The permissions of a set of roles; unknown roles grant nothing."""
    return frozenset(p for role in roles for p in mapping.get(role, ()))
