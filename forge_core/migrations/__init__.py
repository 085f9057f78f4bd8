"""Alembic migrations of the Platform API's database (shipped in the wheel, applied at start)."""
