"""Who is calling and what they may do (framework-free; tokens are checked in adapters.auth)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from forge_core.domain.models import same_repository
from forge_core.services.errors import AuthorizationFailed


@dataclass(frozen=True)
class Principal:
    """``repository`` is set for tokens exchanged from a CI system's token: such a caller acts on
    that repository only, whatever its permissions."""

    subject: str
    permissions: frozenset[str]
    issuer: str
    repository: str | None = None
    # The token's roles and groups as named by its issuer (approval policies may ask for them).
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def allows(self, permission: str) -> bool:
        return "admin" in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.allows(permission):
            raise AuthorizationFailed(
                f"{self.subject} lacks the {permission!r} permission",
                where="Authorization",
                details={"required": permission, "granted": sorted(self.permissions)},
            )

    def require_repository(self, repository: str) -> None:
        if self.repository is not None and not same_repository(repository, self.repository):
            raise AuthorizationFailed(
                f"{self.subject} may act on repository {self.repository} only, not {repository}",
                where="Authorization",
                details={"repository": repository, "token_repository": self.repository},
            )


def permissions_of(roles: Iterable[str], mapping: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The permissions of a set of roles; unknown roles grant nothing."""
    return frozenset(p for role in roles for p in mapping.get(role, ()))
