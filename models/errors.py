"""The error raised for impossible or unknown hardware configuration (one line, names the fix)."""


class ConfigError(ValueError):
    """A hardware, memory or design configuration that cannot be simulated as given."""
