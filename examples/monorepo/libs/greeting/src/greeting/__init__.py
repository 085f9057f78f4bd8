"""Greetings, politely formatted."""

__version__ = "0.1.0"


def greet(name: str, *, excited: bool = False) -> str:
    """``Hello, NAME.`` (or ``!`` when excited); blank names are strangers."""
    who = name.strip() or "stranger"
    return f"Hello, {who}{'!' if excited else '.'}"
