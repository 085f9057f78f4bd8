"""Ports: the protocols plugins implement and the services' narrow interfaces. The plugin
machinery (families, hookspecs, registry, host) is :mod:`forge_core.plugin`; ``ports.hookspecs``
and ``ports.registry`` remain as deprecated aliases."""
