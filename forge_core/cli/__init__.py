"""The ``forge`` command line (typer + rich). Commands import what they need when they run."""
