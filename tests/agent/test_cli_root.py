"""`posture-agent collect --root DIR`: audit a mounted disk image, not the live host."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.probekit import FIXTURES, make_root


def test_collect_from_an_alternate_root_reads_its_files_and_not_the_live_host(tmp_path):
    root = make_root(
        tmp_path,
        {
            "/etc/os-release": 'PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\nID="rocky"\n'
            'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n',
            "/etc/hostname": "image-host-01\n",
            "/var/lib/dpkg/status": (FIXTURES / "software" / "dpkg_status").read_text(),
            "/etc/ufw/ufw.conf": "ENABLED=yes\n",
            "/etc/default/ufw": 'DEFAULT_INPUT_POLICY="DROP"\n',
        },
        bins=["/usr/bin/dpkg", "/usr/sbin/ufw", "/usr/bin/clamscan"],
    )
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "--state-dir", str(tmp_path / "state"),
         "collect", "--root", str(root), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["host"]["hostname"] == "image-host-01"
    assert report["os"]["id"] == "rocky" and report["os"]["version"] == "9.4"
    names = {p["name"] for p in report["software"]["packages"]}
    assert "dpkg" in names and len(names) < 60  # the fixture's packages, not this host's
    # live-only facts are not taken from the machine running the audit
    assert report["network"]["status"] == "unknown"
    assert report["os"]["kernel"] is None
    ufw = next(b for b in report["firewall"]["backends"] if b["name"] == "ufw")
    assert ufw["active"] is True and ufw["default_inbound"] == "drop"
    clam = next(p for p in report["antivirus"]["products"] if p["name"] == "ClamAV")
    assert clam["installed"] is True and clam["running"] is None
