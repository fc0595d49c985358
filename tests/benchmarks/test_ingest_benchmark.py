"""``benchmarks/ingest.py --quick`` runs end to end on a real PostgreSQL.

Only that the script works is checked — every report sent is stored and the
last line has the documented format — never its timings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(
    r"^delta_rps=(?P<delta>\d+(\.\d+)?) full_rps=(?P<full>\d+(\.\d+)?) "
    r"province_query_p95_ms=(?P<p95>\d+(\.\d+)?) lost=(?P<lost>-?\d+)$"
)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.url_for(name)
    postgres_server.drop_database(name)


def test_quick_benchmark_stores_every_report(empty_database: str) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/ingest.py", "--quick", "--database-url", empty_database],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    match = LAST_LINE.match(lines[-1])
    assert match, lines[-1]
    assert match["lost"] == "0"
    # Reports of both kinds were accepted and stored, and the province view answered.
    assert re.search(r"^delta: [1-9]\d* accepted", result.stdout, re.M), result.stdout
    assert re.search(r"^full: [1-9]\d* accepted", result.stdout, re.M), result.stdout
    assert re.search(r"^province query: \d+ agencies, \d+ hosts", result.stdout, re.M)
