"""The error raised for unreadable or inconsistent traces (one line, names the field)."""


class TraceError(ValueError):
    """A trace file or table that does not meet the schema."""
