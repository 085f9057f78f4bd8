"""The Platform API's persistence on SQLAlchemy: ``models`` (tables), ``engine`` (connections and
migrations), and one store per aggregate (``runs``, ``releases``, ``deployments``, ``approvals``,
``outbox``) over ``database``; ``store.SqlStore`` is all of them over one engine."""
