"""The plugin machinery in one place: families, hookspecs, the registry and the host.

- :mod:`~forge_core.plugin.family`: what a family is and how one is declared;
  :mod:`~forge_core.plugin.families`: the core's families, each declared once.
- :mod:`~forge_core.plugin.hookspecs`: the hookspecs (registration hooks derived from the families).
- :mod:`~forge_core.plugin.registry`: registrations, the registry and the registrars.
- :mod:`~forge_core.plugin.host`: loading (stevedore), validating and calling (pluggy) plugins.
- :mod:`~forge_core.plugin.scaffold`: the distribution ``forge plugin new`` writes.

Plugin authors import from :mod:`forge_core.sdk` and test with :mod:`forge_core.testing`.
"""

from forge_core.plugin import families as _families  # noqa: F401  (declares the core's families)
