"""Run a :class:`ProbePlan`: TCP reachability and the filtering hops on the path.

Two methods:

``syn``
    Raw packets through scapy (optional dependency, ``posture-scanner[netprobe]``),
    which needs CAP_NET_RAW (root).  One ``sr()`` batch of TCP SYNs to every
    (target, port): SYN-ACK is *open* (the kernel then answers RST itself, no
    connection is made), RST is *closed*, no answer or ICMP unreachable is
    *filtered*.  A second batch traces the path to each target with TTL-limited
    probes (TCP SYN to a port that answered, else ICMP echo): the sources of ICMP
    time-exceeded in TTL order are the routers crossed.
``connect``
    Plain ``socket.create_connection`` per (target, port), no privilege needed:
    connected is *open*, refused is *closed*, timeout or unreachable is
    *filtered*.  No traceroute (it needs raw sockets).

Safety: a target outside ``plan.allowed_networks`` is refused and never sent a
single packet, and every probe packet goes through a rate limit
(``plan.rate_per_second``): ``inter=1/rate`` for scapy, a shared token bucket
for the connect threads.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agent.netprobe.plan import (
    PortResult,
    PortState,
    ProbeMethod,
    ProbePlan,
    ProbeResults,
    ProbeTarget,
    TargetResult,
)

log = logging.getLogger(__name__)

RequestedMethod = Literal["auto", "syn", "connect"]

NOTE_NO_TRACEROUTE = "traceroute needs raw sockets (root)"
SYN_RETRY = 1  # one resend of unanswered SYNs before calling a port filtered
CONNECT_WORKERS = 16
SILENT_HOP = "*"  # a router on the path that did not answer with time-exceeded

# Outcome of one TTL-limited probe, for trace_path().
HopKind = Literal["time-exceeded", "reached", "unreachable"]

TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10
ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3
ICMP_TIME_EXCEEDED = 11
PROTO_ICMP = 1
PROTO_TCP = 6


class ProbeError(Exception):
    """The requested method cannot run here (no privilege, scapy missing)."""


# --- rate limit --------------------------------------------------------------------


class TokenBucket:
    """Thread-safe token bucket: at most ``rate`` acquisitions per second on average.

    ``burst`` tokens may be spent at once (the bucket starts full).  ``clock`` and
    ``sleep`` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)

    def try_acquire(self) -> float:
        """Take a token if one is there and return 0, else return the wait needed."""
        with self._lock:
            self._refill()
            # The epsilon absorbs float rounding of the refill, which could otherwise
            # ask for a wait too small to move the clock.
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1.0)
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> None:
        """Block until a token is taken."""
        while (wait := self.try_acquire()) > 0:
            self._sleep(wait)


# --- classification helpers (pure) ---------------------------------------------------


def classify_tcp_flags(flags: int) -> PortState:
    """The state a TCP answer to a SYN means."""
    if flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK):
        return "open"
    if flags & TCP_RST:
        return "closed"
    return "filtered"


def classify_syn_reply(
    tcp_flags: int | None = None, icmp_type: int | None = None
) -> PortState:
    """SYN scan: a TCP answer by its flags; ICMP unreachable or nothing is filtered."""
    if tcp_flags is not None:
        return classify_tcp_flags(tcp_flags)
    return "filtered"


_FILTERED_ERRNOS = {
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EACCES,  # a local firewall rejected the connection
    errno.EPERM,
}


def classify_connect_error(exc: BaseException | None) -> PortState:
    """Connect scan: connected is open, refused is closed, anything else is filtered."""
    if exc is None:
        return "open"
    if isinstance(exc, ConnectionRefusedError):
        return "closed"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "closed"
    return "filtered"


def trace_path(
    replies: Mapping[int, tuple[str, HopKind]], max_hops: int
) -> tuple[list[str], int | None, str | None]:
    """Routers crossed, from the answers to TTL-limited probes.

    ``replies`` maps a TTL to (source address, kind) of its answer; a TTL with no
    answer is a silent router (``*``).  Returns (path, hops, error): when the
    target answered at TTL t, the path is TTL 1..t-1 and ``hops = len(path)``;
    when it did not, the path is what answered and ``hops`` is None.
    """
    path: list[str] = []
    for ttl in range(1, max_hops + 1):
        answer = replies.get(ttl)
        if answer is None:
            path.append(SILENT_HOP)
            continue
        source, kind = answer
        if kind == "reached":
            return path, len(path), None
        path.append(source)
        if kind == "unreachable":
            _strip_silent_tail(path)
            return path, None, f"router {source} answered unreachable before the target"
    _strip_silent_tail(path)
    return path, None, f"target not reached within {max_hops} hops"


def _strip_silent_tail(path: list[str]) -> None:
    while path and path[-1] == SILENT_HOP:
        path.pop()


# --- scope, source address, method -----------------------------------------------------


def split_scope(plan: ProbePlan) -> tuple[list[ProbeTarget], list[str]]:
    """(targets to probe, addresses refused because they are outside allowed_networks)."""
    allowed: list[ProbeTarget] = []
    refused: list[str] = []
    for target in plan.targets:
        if plan.in_scope(target.address):
            allowed.append(target)
        else:
            refused.append(target.address)
    return allowed, refused


def local_source_address(destination: str) -> str | None:
    """Local address the kernel would use towards ``destination`` (UDP connect, no packet)."""
    try:
        version = ipaddress.ip_address(destination).version
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((destination, 9))
            return str(sock.getsockname()[0])
    except (OSError, ValueError):
        return None


def _import_scapy() -> Any:
    """Import the parts of scapy used here, quietly; raise ImportError if missing."""
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    logging.getLogger("scapy.loading").setLevel(logging.ERROR)
    from scapy.config import conf  # lazy: slow, optional
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.sendrecv import sr

    conf.verb = 0

    @dataclass
    class _Scapy:
        conf: Any
        IP: Any
        TCP: Any
        ICMP: Any
        sr: Any

    return _Scapy(conf=conf, IP=IP, TCP=TCP, ICMP=ICMP, sr=sr)


def raw_sockets_available() -> bool:
    """Whether this process may open the raw sockets scapy sends and sniffs with."""
    family = getattr(socket, "AF_PACKET", None)
    try:
        if family is not None:
            sock = socket.socket(family, socket.SOCK_RAW, 0)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    except OSError:
        return False
    sock.close()
    return True


def syn_unavailable_reason() -> str | None:
    """Why the SYN method cannot run here, or None when it can."""
    if not raw_sockets_available():
        who = "root" if hasattr(os, "geteuid") and os.geteuid() == 0 else "this user"
        return f"SYN probing needs raw sockets, which {who} may not open (CAP_NET_RAW)"
    try:
        _import_scapy()
    except ImportError:
        return "SYN probing needs scapy (pip install 'posture-scanner[netprobe]')"
    return None


def choose_method(requested: RequestedMethod) -> tuple[ProbeMethod, list[str]]:
    """The method to run and notes on the choice; ProbeError if ``syn`` cannot run."""
    if requested == "connect":
        return "connect", []
    reason = syn_unavailable_reason()
    if reason is None:
        return "syn", []
    if requested == "syn":
        raise ProbeError(reason)
    return "connect", [f"connect method chosen: {reason}"]


# --- the run -----------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _valid_ports(target: ProbeTarget) -> tuple[list[int], str | None]:
    ports: list[int] = []
    invalid: list[int] = []
    for port in target.ports:
        if not 1 <= port <= 65535:
            invalid.append(port)
        elif port not in ports:
            ports.append(port)
    error = f"invalid port(s) ignored: {invalid}" if invalid else None
    return ports, error


def run_plan(
    plan: ProbePlan,
    *,
    method: RequestedMethod = "auto",
    source_address: str | None = None,
) -> ProbeResults:
    """Probe the in-scope targets of ``plan``; refuse the others without touching them.

    ``source_address`` is what the results report as the probing address; by
    default the local address the kernel routes towards the first target with.
    """
    started_at = _now()
    chosen, notes = choose_method(method)
    targets, refused = split_scope(plan)
    for address in refused:
        log.warning("refused probe target %s: outside the agency's declared zones", address)
    if refused:
        notes.append(f"{len(refused)} target(s) outside allowed_networks refused")

    if source_address is None:
        for target in targets:
            source_address = local_source_address(target.address)
            if source_address:
                break

    results: list[TargetResult] = []
    if targets:
        if chosen == "syn":
            ipv4 = [t for t in targets if ipaddress.ip_address(t.address).version == 4]
            ipv6 = [t for t in targets if ipaddress.ip_address(t.address).version == 6]
            by_target: dict[int, TargetResult] = {}
            for target, result in zip(ipv4, _run_syn(ipv4, plan), strict=True):
                by_target[id(target)] = result
            if ipv6:
                notes.append("IPv6 targets probed by connect (SYN probing is IPv4 only)")
                for target, result in zip(ipv6, _run_connect(ipv6, plan), strict=True):
                    by_target[id(target)] = result
            results = [by_target[id(t)] for t in targets]
        else:
            results = _run_connect(targets, plan)
            if plan.traceroute:
                notes.append(NOTE_NO_TRACEROUTE)

    return ProbeResults(
        plan_id=plan.plan_id,
        source_address=source_address or "0.0.0.0",
        source_zone=plan.source_zone,
        method=chosen,
        started_at=started_at,
        finished_at=_now(),
        results=results,
        refused=refused,
        notes=notes,
    )


# --- connect method ----------------------------------------------------------------------


def _connect_one(address: str, port: int, timeout: float, bucket: TokenBucket) -> PortResult:
    bucket.acquire()
    started = time.monotonic()
    error: BaseException | None = None
    try:
        with socket.create_connection((address, port), timeout=timeout):
            pass
    except (OSError, TimeoutError) as exc:
        error = exc
    elapsed_ms = (time.monotonic() - started) * 1000.0
    state = classify_connect_error(error)
    return PortResult(port=port, state=state, rtt_ms=None if state == "filtered" else elapsed_ms)


def _run_connect(targets: Iterable[ProbeTarget], plan: ProbePlan) -> list[TargetResult]:
    bucket = TokenBucket(plan.rate_per_second)
    jobs: list[tuple[TargetResult, int]] = []
    results: list[TargetResult] = []
    for target in targets:
        ports, error = _valid_ports(target)
        result = TargetResult(address=target.address, zone=target.zone, error=error)
        results.append(result)
        jobs.extend((result, port) for port in ports)
    if not jobs:
        return results
    workers = max(1, min(CONNECT_WORKERS, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="netprobe") as pool:
        futures = [
            pool.submit(_connect_one, result.address, port, plan.timeout_seconds, bucket)
            for result, port in jobs
        ]
        for (result, _port), future in zip(jobs, futures, strict=True):
            result.ports.append(future.result())
    return results


# --- SYN method (scapy) --------------------------------------------------------------------


def _rtt_ms(sent: Any, received: Any) -> float | None:
    sent_time = getattr(sent, "sent_time", None)
    if sent_time is None or received.time is None:
        return None
    return max(0.0, (float(received.time) - float(sent_time)) * 1000.0)


def _run_syn(targets: list[ProbeTarget], plan: ProbePlan) -> list[TargetResult]:
    scapy = _import_scapy()
    inter = 1.0 / plan.rate_per_second
    results: list[TargetResult] = []
    packets: list[Any] = []
    for target in targets:
        ports, error = _valid_ports(target)
        results.append(TargetResult(address=target.address, zone=target.zone, error=error))
        for port in ports:
            packets.append(
                scapy.IP(dst=target.address)
                / scapy.TCP(
                    sport=random.randint(32768, 60999),
                    dport=port,
                    flags="S",
                    seq=random.getrandbits(32),
                )
            )

    states: dict[tuple[str, int], PortResult] = {}
    if packets:
        answered, _unanswered = scapy.sr(
            packets, inter=inter, timeout=plan.timeout_seconds, retry=SYN_RETRY, verbose=0
        )
        for sent, received in answered:
            dst, port = sent[scapy.IP].dst, int(sent[scapy.TCP].dport)
            ip = received[scapy.IP]
            if ip.proto == PROTO_TCP and ip.src == dst:
                state = classify_syn_reply(tcp_flags=int(ip.payload.flags))
            elif ip.proto == PROTO_ICMP:
                state = classify_syn_reply(icmp_type=int(ip.payload.type))
            else:
                continue
            rtt = None if state == "filtered" else _rtt_ms(sent, received)
            states[(dst, port)] = PortResult(port=port, state=state, rtt_ms=rtt)
    for result, target in zip(results, targets, strict=True):
        ports, _ = _valid_ports(target)
        result.ports = [
            states.get((target.address, port), PortResult(port=port, state="filtered"))
            for port in ports
        ]

    if plan.traceroute:
        _traceroute(scapy, results, plan)
    return results


def _traceroute(scapy: Any, results: list[TargetResult], plan: ProbePlan) -> None:
    """TTL 1..max_hops towards every target in one batch; fills path and hops."""
    packets: list[Any] = []
    for result in results:
        # A port that answered makes the target answer too (SYN-ACK or RST) once reached.
        answering = [p.port for p in result.ports if p.state == "open"] or [
            p.port for p in result.ports if p.state == "closed"
        ]
        base_sport = random.randint(32768, 60999 - plan.max_hops)
        icmp_id = random.getrandbits(16)
        for ttl in range(1, plan.max_hops + 1):
            ip = scapy.IP(dst=result.address, ttl=ttl, id=random.getrandbits(16))
            if answering:
                probe = ip / scapy.TCP(
                    sport=base_sport + ttl, dport=answering[0], flags="S",
                    seq=random.getrandbits(32),
                )
            else:
                probe = ip / scapy.ICMP(type=8, id=icmp_id, seq=ttl)
            packets.append(probe)
    answered, _unanswered = scapy.sr(
        packets, inter=1.0 / plan.rate_per_second, timeout=plan.timeout_seconds,
        retry=SYN_RETRY, verbose=0,
    )
    replies: dict[str, dict[int, tuple[str, HopKind]]] = {r.address: {} for r in results}
    for sent, received in answered:
        dst, ttl = sent[scapy.IP].dst, int(sent[scapy.IP].ttl)
        ip = received[scapy.IP]
        kind: HopKind | None = None
        if ip.proto == PROTO_ICMP:
            icmp_type = int(ip.payload.type)
            if icmp_type == ICMP_TIME_EXCEEDED:
                kind = "time-exceeded"
            elif icmp_type == ICMP_ECHO_REPLY and ip.src == dst:
                kind = "reached"
            elif icmp_type == ICMP_DEST_UNREACHABLE:
                kind = "reached" if ip.src == dst else "unreachable"
        elif ip.proto == PROTO_TCP and ip.src == dst:
            kind = "reached"
        if kind is not None and dst in replies:
            replies[dst][ttl] = (str(ip.src), kind)
    for result in results:
        path, hops, error = trace_path(replies[result.address], plan.max_hops)
        result.path, result.hops = path, hops
        if error:
            result.error = f"{result.error}; traceroute: {error}" if result.error else (
                f"traceroute: {error}"
            )
