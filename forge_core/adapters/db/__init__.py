"""The Platform API's persistence: SQLAlchemy models, engine and migrations, the Store."""
