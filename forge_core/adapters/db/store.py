"""The Store of the use cases on SQLAlchemy (asyncio): PostgreSQL in a fleet, SQLite embedded.

One module per aggregate (``runs``, ``releases``, ``deployments``, ``promotions``, ``approvals``,
``outbox``), and
``owners`` (which repository an entity belongs to), each behind its own narrow port in
:mod:`forge_core.services.store`; ``SqlStore`` is all of them over one engine.
"""

from __future__ import annotations

from forge_core.adapters.db.approvals import SqlApprovals
from forge_core.adapters.db.claims import SqlRunClaims
from forge_core.adapters.db.deployments import SqlDeployments
from forge_core.adapters.db.outbox import SqlOutbox
from forge_core.adapters.db.owners import SqlOwners
from forge_core.adapters.db.promotions import SqlPromotions
from forge_core.adapters.db.releases import SqlReleases
from forge_core.adapters.db.runs import SqlRuns


class SqlStore(
    SqlRuns, SqlReleases, SqlDeployments, SqlPromotions, SqlApprovals, SqlOwners, SqlOutbox, SqlRunClaims
):
    """Implements :class:`forge_core.services.store.Store`; each method is one transaction."""
