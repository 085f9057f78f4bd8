"""The worker service: ``forge worker --type TYPE`` (see :mod:`forge_core.worker.runner`)."""
