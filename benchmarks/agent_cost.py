"""Cost of one agent collection on this machine, next to ``lynis audit system --quick``.

Each tool runs as a child process; wall time is measured around it, CPU time
(user + system) and peak RSS come from ``os.wait4``, i.e. from the kernel's
accounting of that child *including the commands it ran and reaped* (the
agent's ``apt-get -s``, ``nft``, ``sshd -T``…; lynis's hundreds of greps).
For the agent, the peak RSS of its own Python process (``VmHWM`` sampled from
/proc while it runs) is shown as well, so a large helper command cannot hide
behind the agent's figure or be mistaken for it.

Usage (as root, like the service runs)::

    python benchmarks/agent_cost.py [--agent-runs 5] [--lynis-runs 3]

The last line of the output is machine-readable::

    agent_wall_s=… agent_cpu_s=… agent_peak_rss_mb=… lynis_wall_s=… lynis_cpu_s=… speedup=…

(medians; ``speedup`` = lynis wall time / agent wall time; ``n/a`` when lynis
is not installed).  Targets: agent ≤ 2 s wall, ≤ 60 MB peak RSS, ≥ 20× faster
than lynis.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TARGET_WALL_S = 2.0
TARGET_RSS_MB = 60.0
TARGET_SPEEDUP = 20.0


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # ru_maxrss of the child and its reaped descendants
    own_rss_mb: float | None  # VmHWM of the child process itself (sampled)
    returncode: int
    reported_s: float | None = None  # collection_seconds inside the agent's report


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def measure(argv: Sequence[str], timeout: float, stdout_path: str = os.devnull) -> Run:
    """Run ``argv`` to completion and account for it with ``os.wait4``."""
    with open(stdout_path, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = started + timeout
    own_peak: float | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.perf_counter() - started
            break
        hwm = _vm_hwm_mb(proc.pid)
        if hwm is not None:
            own_peak = max(own_peak or 0.0, hwm)
        if time.perf_counter() > deadline:
            proc.send_signal(signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            break
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        own_rss_mb=own_peak,
        returncode=proc.returncode,
    )


def agent_command(explicit: str | None) -> list[str]:
    """The agent's console script, preferring the one next to this interpreter.

    A version-manager shim (pyenv) on PATH would add a shell and a second
    interpreter start to every run; the script in ``sys.executable``'s
    directory is what a venv install runs.
    """
    if explicit:
        return explicit.split()
    beside = Path(sys.executable).parent / "posture-agent"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("posture-agent")
    if found:
        return [found]
    return [sys.executable, "-m", "agent.cli"]


def run_agent(cmd: list[str], runs: int, timeout: float) -> list[Run]:
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="agent-cost-") as tmp:
        report = Path(tmp) / "report.json"
        for _ in range(runs):
            run = measure([*cmd, "collect", "-o", str(report)], timeout)
            reported = None
            with contextlib.suppress(OSError, ValueError, KeyError):
                reported = json.loads(report.read_text(encoding="utf-8"))["collection_seconds"]
            results.append(
                Run(run.wall_s, run.cpu_s, run.peak_rss_mb, run.own_rss_mb, run.returncode,
                    reported)
            )
    return results


def run_lynis(lynis: str, runs: int, timeout: float) -> list[Run]:
    argv = [lynis, "audit", "system", "--quick", "--no-colors"]
    return [measure(argv, timeout) for _ in range(runs)]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[tuple[str, int, Run]]) -> None:
    header = ("tool", "run", "wall s", "cpu s", "peak rss MB", "own rss MB", "reported s", "rc")
    lines = [header]
    for tool, index, run in rows:
        lines.append(
            (
                tool,
                str(index),
                _fmt(run.wall_s),
                _fmt(run.cpu_s),
                _fmt(run.peak_rss_mb, 1),
                _fmt(run.own_rss_mb, 1),
                _fmt(run.reported_s),
                str(run.returncode),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent-runs", type=int, default=5, metavar="N")
    parser.add_argument("--lynis-runs", type=int, default=3, metavar="M")
    parser.add_argument("--agent-cmd", help="agent command (default: the installed script)")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("warning: not root; both tools skip root-only checks, figures are not "
              "comparable with the service", file=sys.stderr)

    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} "
          f"({os.cpu_count()} CPUs; other work on the machine inflates wall times)")
    cmd = agent_command(args.agent_cmd)
    print(f"agent: {' '.join(cmd)} collect  ({args.agent_runs} runs)")
    agent_runs = run_agent(cmd, args.agent_runs, args.timeout)

    lynis = shutil.which("lynis") or next(
        (p for p in ("/usr/sbin/lynis", "/usr/bin/lynis") if os.access(p, os.X_OK)), None
    )
    lynis_runs: list[Run] = []
    if lynis is None:
        print("lynis: not installed (Debian/Ubuntu: apt-get install lynis); "
              "agent figures only")
    elif args.lynis_runs <= 0:
        print("lynis: skipped (--lynis-runs 0); agent figures only")
    else:
        print(f"lynis: {lynis} audit system --quick  ({args.lynis_runs} runs)")
        lynis_runs = run_lynis(lynis, args.lynis_runs, args.timeout)
    print()

    print_table([("agent", i + 1, r) for i, r in enumerate(agent_runs)]
                + [("lynis", i + 1, r) for i, r in enumerate(lynis_runs)])
    print()

    failed = [r for r in agent_runs if r.returncode != 0]
    if failed:
        print(f"warning: {len(failed)} agent run(s) exited non-zero", file=sys.stderr)

    agent_wall = statistics.median(r.wall_s for r in agent_runs)
    agent_cpu = statistics.median(r.cpu_s for r in agent_runs)
    agent_rss = statistics.median(r.peak_rss_mb for r in agent_runs)
    verdicts = [
        f"wall {agent_wall:.2f} s (target <= {TARGET_WALL_S:g}): "
        + ("ok" if agent_wall <= TARGET_WALL_S else "MISSED"),
        f"peak RSS {agent_rss:.1f} MB (target <= {TARGET_RSS_MB:g}): "
        + ("ok" if agent_rss <= TARGET_RSS_MB else "MISSED"),
    ]
    lynis_wall = lynis_cpu = speedup = None
    if lynis_runs:
        lynis_wall = statistics.median(r.wall_s for r in lynis_runs)
        lynis_cpu = statistics.median(r.cpu_s for r in lynis_runs)
        speedup = lynis_wall / agent_wall
        verdicts.append(
            f"speedup {speedup:.1f}x (target >= {TARGET_SPEEDUP:g}x): "
            + ("ok" if speedup >= TARGET_SPEEDUP else "MISSED")
        )
    for verdict in verdicts:
        print(verdict)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def na(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    print(
        f"agent_wall_s={agent_wall:.2f} agent_cpu_s={agent_cpu:.2f} "
        f"agent_peak_rss_mb={agent_rss:.1f} lynis_wall_s={na(lynis_wall, 2)} "
        f"lynis_cpu_s={na(lynis_cpu, 2)} speedup={na(speedup, 1)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
