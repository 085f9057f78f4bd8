"""Registry host names, standard library only (the CMP's lean cold path reads them too)."""

from __future__ import annotations


def is_loopback(registry: str) -> bool:
    """``registry`` (``host[:port]``, ``[v6]:port``) names this machine: plain HTTP is allowed there."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    import ipaddress  # only when a registry is named: not on the CMP's start-up path

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
