"""The domain: pydantic models and pure rules. Imports nothing else of forge_core."""
