"""Segmentation probes: pure helpers, then real probes across network namespaces.

The real tests build their own topology and send traffic only inside it:

    np-a 10.213.1.2/24 --- 10.213.1.1 np-r 10.213.2.1 --- 10.213.2.2/24 np-b
                          (ip_forward=1, nftables drops forwarded tcp/23)

np-b listens on tcp/8022 (8023 is closed); the agent CLI runs inside np-a.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import cli
from agent import client as agent_client
from agent.config import AgentConfig, Enrollment
from agent.netprobe import runner
from agent.netprobe.plan import ProbePlan, ProbeResults, ProbeTarget, TargetResult
from agent.netprobe.runner import (
    ProbeError,
    TokenBucket,
    classify_connect_error,
    classify_syn_reply,
    classify_tcp_flags,
    trace_path,
)

REPO = Path(__file__).resolve().parents[2]


def make_plan(targets: list[ProbeTarget], allowed: list[str], **extra: Any) -> ProbePlan:
    return ProbePlan(
        agency_id=1,
        source_zone="lan",
        generated_at=datetime.now(UTC),
        targets=targets,
        allowed_networks=allowed,
        **extra,
    )


# --- scope -------------------------------------------------------------------------


def test_out_of_scope_targets_are_refused_and_never_probed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probed: list[str] = []

    def fake_connect(targets: list[ProbeTarget], plan: ProbePlan) -> list[TargetResult]:
        probed.extend(t.address for t in targets)
        return [TargetResult(address=t.address, zone=t.zone) for t in targets]

    monkeypatch.setattr(runner, "_run_connect", fake_connect)
    plan = make_plan(
        [
            ProbeTarget(address="10.20.0.5", zone="servers", ports=[22]),
            ProbeTarget(address="10.30.0.5", zone="elsewhere", ports=[22]),
            ProbeTarget(address="8.8.8.8", zone="internet", ports=[53]),
            ProbeTarget(address="not-an-address", zone="junk", ports=[80]),
        ],
        allowed=["10.20.0.0/16"],
    )
    results = runner.run_plan(plan, method="connect", source_address="10.10.0.2")
    assert probed == ["10.20.0.5"]
    assert results.refused == ["10.30.0.5", "8.8.8.8", "not-an-address"]
    assert [r.address for r in results.results] == ["10.20.0.5"]
    assert results.source_address == "10.10.0.2"
    assert results.started_at <= results.finished_at
    assert results.started_at.tzinfo is not None


def test_no_allowed_networks_refuses_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any) -> list[TargetResult]:
        raise AssertionError("nothing may be probed")

    monkeypatch.setattr(runner, "_run_connect", forbidden)
    monkeypatch.setattr(runner, "_run_syn", forbidden)
    plan = make_plan([ProbeTarget(address="10.20.0.5", zone="s", ports=[22])], allowed=[])
    results = runner.run_plan(plan, method="connect")
    assert results.refused == ["10.20.0.5"]
    assert results.results == []


# --- rate limiter ------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_spaces_acquisitions_by_one_over_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bucket.acquire()
    assert clock.now == pytest.approx(0.4)  # first token at once, then one per 0.1 s
    assert len(clock.sleeps) == 4
    assert all(s == pytest.approx(0.1) for s in clock.sleeps)


def test_token_bucket_burst_then_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.try_acquire() == pytest.approx(0.25)  # half a token there
    clock.now += 10.0  # a long idle time refills to the burst, not beyond
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() > 0


def test_token_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, burst=0.5)


# --- classification ----------------------------------------------------------------


def test_classify_tcp_answers() -> None:
    assert classify_tcp_flags(0x12) == "open"  # SYN-ACK
    assert classify_tcp_flags(0x14) == "closed"  # RST-ACK
    assert classify_tcp_flags(0x04) == "closed"
    assert classify_tcp_flags(0x10) == "filtered"  # a bare ACK is no answer to a SYN
    assert classify_syn_reply(tcp_flags=0x12) == "open"
    assert classify_syn_reply(icmp_type=3) == "filtered"
    assert classify_syn_reply() == "filtered"


def test_classify_connect_outcomes() -> None:
    assert classify_connect_error(None) == "open"
    assert classify_connect_error(ConnectionRefusedError()) == "closed"
    assert classify_connect_error(OSError(errno.ECONNREFUSED, "refused")) == "closed"
    assert classify_connect_error(TimeoutError()) == "filtered"
    assert classify_connect_error(OSError(errno.EHOSTUNREACH, "no route")) == "filtered"


def test_trace_path_counts_routers_before_the_target() -> None:
    assert trace_path(
        {1: ("10.0.0.1", "time-exceeded"), 2: ("10.9.0.5", "reached"), 3: ("10.9.0.5", "reached")},
        8,
    ) == (["10.0.0.1"], 1, None)
    # Directly connected: the first probe already reaches the target.
    assert trace_path({1: ("10.9.0.5", "reached")}, 8) == ([], 0, None)
    # A silent router still counts as a hop.
    assert trace_path(
        {1: ("10.0.0.1", "time-exceeded"), 3: ("10.9.0.5", "reached")}, 8
    ) == (["10.0.0.1", "*"], 2, None)


def test_trace_path_not_reached() -> None:
    path, hops, error = trace_path({1: ("10.0.0.1", "time-exceeded")}, 4)
    assert (path, hops) == (["10.0.0.1"], None)
    assert error and "not reached within 4 hops" in error
    path, hops, error = trace_path(
        {1: ("10.0.0.1", "time-exceeded"), 2: ("10.0.0.2", "unreachable")}, 4
    )
    assert (path, hops) == (["10.0.0.1", "10.0.0.2"], None)
    assert error and "10.0.0.2" in error


def test_method_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "syn_unavailable_reason", lambda: "no raw sockets")
    assert runner.choose_method("connect") == ("connect", [])
    method, notes = runner.choose_method("auto")
    assert method == "connect" and "no raw sockets" in notes[0]
    with pytest.raises(ProbeError, match="no raw sockets"):
        runner.choose_method("syn")
    monkeypatch.setattr(runner, "syn_unavailable_reason", lambda: None)
    assert runner.choose_method("auto") == ("syn", [])


# --- connect probes on loopback (no privilege) ------------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_method_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        open_port = int(listener.getsockname()[1])
        closed_port = _unused_port()
        plan = make_plan(
            [ProbeTarget(address="127.0.0.1", zone="self", ports=[open_port, closed_port])],
            allowed=["127.0.0.0/8"],
            timeout_seconds=2.0,
        )
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(plan.model_dump_json(), encoding="utf-8")
        rc = cli.main(["netprobe", "--plan", str(plan_file), "--dry-run", "--method", "connect"])
    assert rc == 0
    results = ProbeResults.model_validate_json(capsys.readouterr().out)
    assert results.method == "connect"
    assert results.source_address == "127.0.0.1"
    states = {p.port: p.state for p in results.results[0].ports}
    assert states == {open_port: "open", closed_port: "closed"}
    assert results.results[0].hops is None
    assert runner.NOTE_NO_TRACEROUTE in results.notes


# --- collector exchange ----------------------------------------------------------------


def _enrollment() -> Enrollment:
    return Enrollment(
        collector_url="https://collector.test",
        agent_id="a-1",
        host_id=7,
        credential="secret",
        agency={},
    )


def test_fetch_probe_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan([], allowed=["10.20.0.0/16"])
    answers: dict[str, httpx.Response] = {}
    seen: list[tuple[str, dict[str, str]]] = []

    def fake_get(url: str, *, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        seen.append((url, headers))
        return answers["next"]

    monkeypatch.setattr(agent_client.httpx, "get", fake_get)
    config = AgentConfig()
    answers["next"] = httpx.Response(200, json=plan.model_dump(mode="json"))
    fetched = agent_client.fetch_probe_plan(_enrollment(), config)
    assert fetched is not None and fetched.plan_id == plan.plan_id
    assert seen[0][0] == "https://collector.test/api/v1/agent/probe-plan"
    assert seen[0][1]["Authorization"] == "Bearer secret"
    answers["next"] = httpx.Response(409, json={"detail": "no declared zones"})
    assert agent_client.fetch_probe_plan(_enrollment(), config) is None
    answers["next"] = httpx.Response(404, json={"detail": "not found"})
    assert agent_client.fetch_probe_plan(_enrollment(), config) is None
    answers["next"] = httpx.Response(401, json={"detail": "revoked"})
    with pytest.raises(agent_client.CredentialRejected):
        agent_client.fetch_probe_plan(_enrollment(), config)
    answers["next"] = httpx.Response(500, text="boom")
    with pytest.raises(agent_client.ProbeExchangeError):
        agent_client.fetch_probe_plan(_enrollment(), config)


def test_post_probe_results(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, bytes]] = []
    status = {"code": 201}

    def fake_post(url: str, *, content: str, **kwargs: Any) -> httpx.Response:
        sent.append((url, content.encode()))
        return httpx.Response(status["code"], json={"detail": "x"})

    monkeypatch.setattr(agent_client.httpx, "post", fake_post)
    now = datetime.now(UTC)
    results = ProbeResults(
        plan_id=uuid.uuid4(), source_address="10.1.0.2", source_zone="lan", method="connect",
        started_at=now, finished_at=now,
    )
    agent_client.post_probe_results(_enrollment(), AgentConfig(), results)
    assert sent[0][0] == "https://collector.test/api/v1/agent/probe-results"
    assert ProbeResults.model_validate_json(sent[0][1]).plan_id == results.plan_id
    status["code"] = 422
    with pytest.raises(agent_client.ProbeExchangeError):
        agent_client.post_probe_results(_enrollment(), AgentConfig(), results)


# --- real probes across network namespaces ----------------------------------------------

NS_A, NS_B, NS_R = "np-a", "np-b", "np-r"
ADDR_A, ADDR_RA, ADDR_RB, ADDR_B = "10.213.1.2", "10.213.1.1", "10.213.2.1", "10.213.2.2"
OUT_OF_SCOPE = "10.213.9.9"
OPEN_PORT, CLOSED_PORT, FILTERED_PORT = 8022, 8023, 23

NFT_RULES = f"""
table inet np {{
    counter out_of_scope {{ }}
    counter to_target {{ }}
    chain np_pre {{
        type filter hook prerouting priority -300; policy accept;
        ip daddr {OUT_OF_SCOPE} counter name out_of_scope
        ip daddr {ADDR_B} counter name to_target
    }}
    chain np_forward {{
        type filter hook forward priority 0; policy accept;
        tcp dport {FILTERED_PORT} drop
    }}
}}
"""

LISTENER = f"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{ADDR_B}", {OPEN_PORT}))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


def _netns_unavailable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian packages iproute2 and nftables)"
    return None


def _sh(*argv: str, input_text: str | None = None) -> str:
    done = subprocess.run(
        argv, input=input_text, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def _in(ns: str, *argv: str, input_text: str | None = None) -> str:
    return _sh("ip", "netns", "exec", ns, *argv, input_text=input_text)


def _delete_namespaces() -> None:
    existing = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout
    names = {line.split()[0] for line in existing.splitlines() if line.strip()}
    for ns in (NS_A, NS_B, NS_R):
        if ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _build_topology() -> None:
    for ns in (NS_A, NS_B, NS_R):
        _sh("ip", "netns", "add", ns)
        _in(ns, "ip", "link", "set", "lo", "up")
    _sh("ip", "link", "add", "np-a0", "netns", NS_A, "type", "veth",
        "peer", "name", "np-ra", "netns", NS_R)
    _sh("ip", "link", "add", "np-b0", "netns", NS_B, "type", "veth",
        "peer", "name", "np-rb", "netns", NS_R)
    _in(NS_A, "ip", "addr", "add", f"{ADDR_A}/24", "dev", "np-a0")
    _in(NS_A, "ip", "link", "set", "np-a0", "up")
    _in(NS_A, "ip", "route", "add", "default", "via", ADDR_RA)
    _in(NS_B, "ip", "addr", "add", f"{ADDR_B}/24", "dev", "np-b0")
    _in(NS_B, "ip", "link", "set", "np-b0", "up")
    _in(NS_B, "ip", "route", "add", "default", "via", ADDR_RB)
    _in(NS_R, "ip", "addr", "add", f"{ADDR_RA}/24", "dev", "np-ra")
    _in(NS_R, "ip", "addr", "add", f"{ADDR_RB}/24", "dev", "np-rb")
    _in(NS_R, "ip", "link", "set", "np-ra", "up")
    _in(NS_R, "ip", "link", "set", "np-rb", "up")
    _in(NS_R, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    _in(NS_R, "nft", "-f", "-", input_text=NFT_RULES)


@pytest.fixture(scope="module")
def topology() -> Iterator[None]:
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    _delete_namespaces()  # leftovers of an interrupted run
    listener: subprocess.Popen[str] | None = None
    try:
        _build_topology()
        listener = subprocess.Popen(
            ["ip", "netns", "exec", NS_B, sys.executable, "-c", LISTENER],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert listener.stdout is not None
        line = listener.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"listener in {NS_B} did not start: {listener.stderr.read()}")
        yield
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
        _delete_namespaces()


def _counter(name: str) -> int:
    data = json.loads(_in(NS_R, "nft", "-j", "list", "counter", "inet", "np", name))
    for item in data["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"counter {name} not found")


def _probe_from_a(tmp_path: Path, method: str) -> tuple[ProbeResults, float]:
    plan = make_plan(
        [
            ProbeTarget(address=ADDR_B, zone="servers",
                        ports=[OPEN_PORT, CLOSED_PORT, FILTERED_PORT]),
            ProbeTarget(address=OUT_OF_SCOPE, zone="nowhere", ports=[OPEN_PORT, 22]),
        ],
        allowed=["10.213.2.0/24"],
        timeout_seconds=0.5,
        rate_per_second=100.0,
        max_hops=4,
    )
    plan_file = tmp_path / f"plan-{method}.json"
    plan_file.write_text(plan.model_dump_json(), encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    started = time.monotonic()
    done = subprocess.run(
        ["ip", "netns", "exec", NS_A, sys.executable, "-m", "agent.cli",
         "--state-dir", str(tmp_path / "state"),
         "netprobe", "--plan", str(plan_file), "--dry-run", "--method", method],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    results = ProbeResults.model_validate_json(done.stdout)
    assert results.plan_id == plan.plan_id
    return results, elapsed


def _check_common(results: ProbeResults, before_out: int, before_target: int) -> None:
    assert results.source_address == ADDR_A
    assert results.refused == [OUT_OF_SCOPE]
    assert [r.address for r in results.results] == [ADDR_B]
    states = {p.port: p.state for p in results.results[0].ports}
    assert states == {OPEN_PORT: "open", CLOSED_PORT: "closed", FILTERED_PORT: "filtered"}
    # The router saw probes to the target but not one packet to the refused address.
    assert _counter("to_target") > before_target
    assert _counter("out_of_scope") == before_out == 0


@pytest.mark.usefixtures("topology")
def test_syn_probe_across_a_router(tmp_path: Path) -> None:
    if importlib.util.find_spec("scapy") is None:
        pytest.skip("scapy is not installed (pip install '.[netprobe]')")
    before_out, before_target = _counter("out_of_scope"), _counter("to_target")
    results, elapsed = _probe_from_a(tmp_path, "syn")
    print(f"SYN probe run inside {NS_A}: {elapsed:.2f}s")
    assert results.method == "syn"
    _check_common(results, before_out, before_target)
    target = results.results[0]
    assert target.path == [ADDR_RA]
    assert target.hops == 1
    assert target.error is None


@pytest.mark.usefixtures("topology")
def test_connect_probe_across_a_router(tmp_path: Path) -> None:
    before_out, before_target = _counter("out_of_scope"), _counter("to_target")
    results, elapsed = _probe_from_a(tmp_path, "connect")
    print(f"connect probe run inside {NS_A}: {elapsed:.2f}s")
    assert results.method == "connect"
    _check_common(results, before_out, before_target)
    assert results.results[0].hops is None
    assert results.results[0].path is None
    assert runner.NOTE_NO_TRACEROUTE in results.notes
