"""Ports: the hookspecs, the registry plugins register into, and the protocols they implement."""
