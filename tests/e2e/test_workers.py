"""``posture-collector serve --workers N``: several processes on one port and one database."""

from __future__ import annotations

import psutil

from tests.e2e.conftest import Collector


def test_serve_with_two_workers_shares_the_work(tmp_path) -> None:
    collector = Collector(tmp_path, workers=2)
    collector.start()
    try:
        assert collector.proc is not None
        workers = psutil.Process(collector.proc.pid).children(recursive=True)
        assert len([p for p in workers if "python" in p.name().lower()]) >= 2
        with collector.admin() as api:
            codes = [
                api.post(
                    "/agencies", json={"code": f"dv-{i}", "name": f"Đơn vị {i}", "level": 2}
                ).status_code
                for i in range(20)
            ]
            assert codes == [201] * 20
            assert len(api.get("/agencies").json()) == 20
    finally:
        collector.stop()
    # both workers started cleanly: neither lost a race to migrate the new database
    log = collector.log.read_text()
    assert "Traceback" not in log and "already exists" not in log, log
