#!/usr/bin/env python3
"""Dashboard page render times: the province overview and an agency page.

Seeds a throwaway PostgreSQL (tests/pg.py style, via benchmarks/ingest.py's
seeder: agencies, hosts and one full report with its findings per host), takes
two compliance snapshots per agency (for the trend arrows and the chart), logs
in through the login form and times N renders of each page in process (ASGI,
no network).  The last line is machine-readable:

    overview_p95_ms=… agency_p95_ms=… hosts=… agencies=…

Usage (from the repository root):

    python benchmarks/dashboard.py                 # 100 agencies, 10,000 hosts
    python benchmarks/dashboard.py --quick         # a smoke run (tiny sizes)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "benchmark password 2026"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def run(url: str, agencies: int, hosts: int, packages: int, renders: int) -> str:
    from fastapi.testclient import TestClient
    from sqlmodel import Session, col, select

    from benchmarks.ingest import seed
    from collector import history, users
    from collector.app import create_app
    from collector.models import Agency
    from collector.settings import Settings

    seeded = seed(url, agencies, hosts, packages, datetime.now(UTC))
    print(f"seeded {seeded.hosts} hosts in {seeded.agencies} agencies in {seeded.seconds:.0f} s")
    settings = Settings(database_url=url)
    app = create_app(settings)
    with TestClient(app) as client:
        started = time.monotonic()
        with Session(app.state.engine) as session:
            users.create_user(session, username="bench", role="province_admin", password=PASSWORD)
            session.commit()
            ids = list(session.exec(select(Agency.id).order_by(col(Agency.id))).all())
            for _ in range(2):  # two snapshots: trend arrows and the score chart
                for agency_id in ids:
                    agency = session.get(Agency, agency_id)
                    assert agency is not None
                    history.take_snapshot(session, agency, trigger="manual", settings=settings)
        print(f"snapshots taken in {time.monotonic() - started:.0f} s")
        page = client.get("/ui/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = client.post(
            "/ui/login",
            data={"csrf_token": token.group(1), "username": "bench", "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        timings: dict[str, list[float]] = {"overview": [], "agency": []}
        pages = {"overview": "/ui/province", "agency": f"/ui/agencies/{ids[0]}"}
        for name, path in pages.items():
            warm = client.get(path)  # first read refreshes rows that are out of date
            assert warm.status_code == 200, warm.text[:500]
            for _ in range(renders):
                t0 = time.perf_counter()
                response = client.get(path)
                timings[name].append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
        for name, values in timings.items():
            print(
                f"{name}: median {statistics.median(values):.0f} ms, "
                f"p95 {p95(values):.0f} ms, max {max(values):.0f} ms over {len(values)} renders"
            )
    return (
        f"overview_p95_ms={p95(timings['overview']):.0f} "
        f"agency_p95_ms={p95(timings['agency']):.0f} "
        f"hosts={seeded.hosts} agencies={seeded.agencies}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=100)
    parser.add_argument("--packages", type=int, default=200, help="packages per host")
    parser.add_argument("--renders", type=int, default=40, help="timed renders per page")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: start one)")
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.agencies, args.packages, args.renders = 40, 4, 20, 5
    if args.database_url:
        line = run(args.database_url, args.agencies, args.hosts, args.packages, args.renders)
    else:
        from benchmarks.ingest import throwaway_postgres

        with throwaway_postgres() as url:
            line = run(url, args.agencies, args.hosts, args.packages, args.renders)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
