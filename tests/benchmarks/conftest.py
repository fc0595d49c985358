"""Fixtures of the benchmark smoke tests: the throwaway PostgreSQL server."""

from tests.pg import postgres_server_fixture  # noqa: F401  (fixture)
