"""Cost of segmentation probing and discovery on a real (namespaced) level-3 network.

Builds the ``bench4`` netlab topology (tests/netlab.py: outside, DMZ, server and
internal zones behind two nftables firewalls; 3 addresses per zone namespace
with ``--extra 2``), then:

* **probe matrix** — ``posture-agent netprobe --plan … --dry-run`` in every zone
  at once, each with a plan targeting every address of the other three zones on
  the ``network.probe_ports`` set (+443, 5432), with traceroute; wall time of the
  whole matrix.  Target ≤ 10 s.
* **discovery** — :func:`collector.scanner.discovery.discover` of the internal
  zone (10.214.4.0/24, from the host through the scan link) against plain
  ``nmap -sn`` followed by ``nmap --top-ports`` of the live hosts, same flags,
  same run, alternating which goes first; medians.  Target ratio ≤ 1.2.

Usage (root; Debian packages iproute2, nftables, nmap; pip python-nmap, scapy)::

    sudo python benchmarks/segmentation.py [--runs 3] [--top-ports 100] [--extra 2]

The last line is machine-readable::

    probe_matrix_s=… discovery_s=… nmap_s=… discovery_ratio=…

Only addresses inside 10.214.0.0/16 in the lab's namespaces are ever probed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.netprobe.plan import ProbePlan, ProbeTarget  # noqa: E402
from collector.scanner.discovery import discover  # noqa: E402
from policies.parameters import default_parameters  # noqa: E402
from tests.netlab import Lab, missing_requirements  # noqa: E402

ZONES = ("outside", "dmz", "server", "internal")
SWEPT_ZONE = "10.214.4.0/24"


def plans(lab: Lab) -> dict[str, ProbePlan]:
    ports = sorted({*default_parameters()["network"]["probe_ports"], 443, 5432})
    out = {}
    for role in ZONES:
        targets = [
            ProbeTarget(address=address, zone=other, ports=ports)
            for other in ZONES
            if other != role
            for address in (lab.hosts[other].address, *lab.hosts[other].extra)
        ]
        out[role] = ProbePlan(
            plan_id=uuid.uuid4(),
            agency_id=1,
            source_zone=role,
            generated_at=datetime.now(UTC),
            targets=targets,
            traceroute=True,
            rate_per_second=float(default_parameters()["network"]["probe_rate_per_second"]),
            allowed_networks=list(lab.zone_nets.values()),
        )
    return out


def probe_matrix(lab: Lab, workdir: Path) -> tuple[float, int]:
    files = {}
    for role, plan in plans(lab).items():
        files[role] = workdir / f"plan-{role}.json"
        files[role].write_text(plan.model_dump_json(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def one(role: str) -> int:
        done = lab.run(role, [sys.executable, "-m", "agent.cli", "netprobe",
                              "--plan", str(files[role]), "--dry-run"], env=env)
        if done.returncode != 0:
            raise RuntimeError(f"netprobe in {role}: {done.stderr.strip()}")
        results = json.loads(done.stdout)
        return sum(1 for t in results["results"] for p in t["ports"] if p["state"] == "open")

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(ZONES)) as pool:
        opened = sum(pool.map(one, ZONES))
    return time.monotonic() - start, opened


def plain_nmap(cidr: str, top_ports: int) -> tuple[float, int]:
    start = time.monotonic()
    sweep = subprocess.run(["nmap", "-sn", "-n", "-T4", "-oG", "-", cidr],
                           capture_output=True, text=True, check=True)
    local = {a for a in subprocess.run(["hostname", "-I"], capture_output=True,
                                       text=True).stdout.split()}
    live = [line.split()[1] for line in sweep.stdout.splitlines()
            if line.startswith("Host:") and "Status: Up" in line]
    live = [a for a in live if a not in local]
    method = "-sS" if os.geteuid() == 0 else "-sT"
    subprocess.run(["nmap", "-n", method, "--top-ports", str(top_ports), "-T4",
                    "--max-retries", "1", "--host-timeout", "120s", "-oX", "-", *live],
                   capture_output=True, check=True)
    return time.monotonic() - start, len(live)


def ours(cidr: str, top_ports: int) -> tuple[float, int]:
    start = time.monotonic()
    hosts = discover([cidr], top_ports=top_ports)
    return time.monotonic() - start, len(hosts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top-ports", type=int, default=100)
    parser.add_argument("--extra", type=int, default=2, help="extra addresses per zone")
    args = parser.parse_args()
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    with Lab("bench4").build(extra_per_zone=args.extra) as lab, \
            tempfile.TemporaryDirectory() as tmp:
        print(f"lab built in {time.monotonic() - t0:.1f} s")
        matrix, discovery_times, nmap_times = [], [], []
        for i in range(args.runs):
            seconds, opened = probe_matrix(lab, Path(tmp))
            matrix.append(seconds)
            print(f"probe matrix run {i + 1}: {seconds:.2f} s ({opened} open ports)")
            order = (("discovery", ours), ("nmap", plain_nmap))
            for name, fn in order if i % 2 == 0 else order[::-1]:
                seconds, live = fn(SWEPT_ZONE, args.top_ports)
                (discovery_times if name == "discovery" else nmap_times).append(seconds)
                print(f"{name} run {i + 1}: {seconds:.2f} s ({live} live hosts)")
    m, d, n = (statistics.median(x) for x in (matrix, discovery_times, nmap_times))
    print(f"probe_matrix_s={m:.2f} discovery_s={d:.2f} nmap_s={n:.2f} "
          f"discovery_ratio={d / n:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
