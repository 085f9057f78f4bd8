from forge_earthly.testing import earthly_standin

__all__ = ["earthly_standin"]  # the stand-in earthly executable, first on PATH
