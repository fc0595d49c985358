#!/usr/bin/env python3
"""Time the PDF report of a 500-machine agency (target: ≤ 10 s).

Seeds one agency in a fresh SQLite database (or ``--database-url`` of an empty
database): ``--machines`` hosts enrolled with ``collector.crud.enroll`` and one
report each stored by ``collector.ingest.ingest`` (the real evaluation; one
machine in three without anti-virus and with its firewall off, one in ten
silent), a waiver, an attestation, incidents and compliance snapshots.  Then
times ``collector.reports.render_agency(..., "pdf")``: gathering the data and
drawing the PDF, as ``posture-collector report`` and the API do.

Run from the repository root::

    python benchmarks/report_pdf.py                 # 500 machines
    python benchmarks/report_pdf.py --machines 50   # a smoke run

Last line: ``pdf_seconds=… machines=… pages=…``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from collector import attestations, crud, history, incidents, reports, waivers  # noqa: E402
from collector.credentials import AgentContext  # noqa: E402
from collector.db import create_db_engine, init_db  # noqa: E402
from collector.ingest import ingest  # noqa: E402
from collector.models import Agency, utcnow  # noqa: E402
from collector.settings import Settings  # noqa: E402
from tests.collector.conftest import insecure_sections, make_report  # noqa: E402


def seed(session: Session, machines: int, settings: Settings) -> Agency:
    agency = crud.create_agency(
        session, code="so-tnmt", name="Sở Tài nguyên và Môi trường tỉnh Bình Dương", level=3
    )
    session.commit()
    assert agency.id is not None
    token = crud.create_enrollment_token(session, agency).token
    session.commit()
    now = utcnow()
    host_ids = []
    for i in range(machines):
        hostname = f"may-{i:04d}"
        role = "server" if i % 10 == 0 else "workstation"
        enrolled = crud.enroll(
            session, token=token, hostname=hostname, machine_id=f"m-{i:04d}", role=role
        )
        session.commit()
        assert enrolled.host.id is not None and enrolled.credential.id is not None
        host_ids.append(enrolled.host.id)
        if i % 10 == 9:
            continue  # enrolled, never reported: silent
        sections = insecure_sections() if i % 3 == 0 else {}
        report = make_report(hostname=hostname, machine_id=f"m-{i:04d}", role=role, **sections)
        agent = AgentContext(
            credential_id=enrolled.credential.id, host_id=enrolled.host.id, agency_id=agency.id
        )
        ingest(
            session,
            agent,
            report.model_dump_json().encode(),
            content_encoding=None,
            max_bytes=10_000_000,
            settings=settings,
        )
    waivers.create_waiver(
        session,
        agency,
        check_id="av_installed",
        host_id=host_ids[0],
        justification="Máy đo đạc chuyên dụng, nhà sản xuất không cho cài phần mềm diệt virus.",
        author="Giám đốc Sở",
        expires_at=now + timedelta(days=90),
    )
    requirement = attestations.attestable_requirements(agency.level)[0]
    attestations.record_attestation(
        session,
        agency,
        requirement_id=requirement.id,
        statement="Đã kiểm tra phòng máy chủ.",
        attested_by="Nguyễn Văn An, Trưởng phòng CNTT",
    )
    for n, category in enumerate(incidents.CATEGORIES):
        incidents.create_incident(
            session,
            agency,
            category=category,
            title=f"Sự cố số {n + 1}",
            occurred_at=now - timedelta(days=n + 1),
            reported_by="Trần Thị Bình",
            host_id=host_ids[n],
        )
    session.commit()
    for days in (60, 30, 0):
        fresh = session.get(Agency, agency.id)
        assert fresh is not None
        history.take_snapshot(session, fresh, trigger="manual", now=now - timedelta(days=days))
    fresh = session.get(Agency, agency.id)
    assert fresh is not None
    return fresh


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite)")
    parser.add_argument("--period", default=None, help="default: the current year")
    parser.add_argument("--out", type=Path, default=None, help="keep the PDF here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url)
        engine = create_db_engine(settings)
        init_db(engine)
        started = time.perf_counter()
        with Session(engine) as session:
            agency = seed(session, args.machines, settings)
        print(f"seeded {args.machines} machines in {time.perf_counter() - started:.1f} s")
        period = reports.parse_period(args.period or str(utcnow().year))
        with Session(engine) as session:
            agency = session.get(Agency, agency.id)
            assert agency is not None
            started = time.perf_counter()
            doc = reports.render_agency(session, agency, period, "pdf", settings=settings)
            seconds = time.perf_counter() - started
        engine.dispose()
    if args.out is not None:
        args.out.write_bytes(doc.data)
    print(f"pdf: {len(doc.data)} bytes, {doc.pages} pages ({period.label('en')})")
    print(f"pdf_seconds={seconds:.2f} machines={args.machines} pages={doc.pages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
