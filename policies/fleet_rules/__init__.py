"""Agency-wide rules (``<family>.py`` predicates + ``<family>.yaml`` metadata)."""
