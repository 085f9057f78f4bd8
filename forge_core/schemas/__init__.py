"""The CUE schemas of the configuration files (read with importlib.resources)."""
