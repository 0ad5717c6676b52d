"""amanda-dr essentials: the agent every client runs, and the formats both halves share."""

__version__ = "0.1.0"
