"""Adapters: the only code that talks to the world outside (entry points, databases, buses, …)."""
