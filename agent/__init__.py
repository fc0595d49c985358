"""posture agent: observes a host's security facts and ships them to the collector."""

__version__ = "0.1.0"
