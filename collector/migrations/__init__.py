"""Alembic migrations of the collector database (``posture-collector migrate``)."""
