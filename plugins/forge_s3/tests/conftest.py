from forge_s3.testing import moto_s3

__all__ = ["moto_s3"]  # the session-scoped moto server fixture
