"""Tests of the network probe (psutil interfaces/sockets, /proc/net fallback)."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from agent.probes.base import ProbeContext
from agent.probes.network import (
    build_interfaces,
    decode_proc_address,
    listening_from_connections,
    parse_proc_net,
    prefixlen_from_netmask,
    probe,
)
from agent.report import ListeningSocket, NetworkSection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "network"
SNAPSHOT = json.loads((FIXTURES / "psutil_snapshot.json").read_text())
FAMILIES = {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_LINK": psutil.AF_LINK}
TYPES = {"SOCK_STREAM": socket.SOCK_STREAM, "SOCK_DGRAM": socket.SOCK_DGRAM}
PIDS = {c["pid"]: c["process"] for c in SNAPSHOT["net_connections"] if c["pid"]}


def recorded_addrs() -> dict[str, list[SimpleNamespace]]:
    return {
        name: [SimpleNamespace(**{**a, "family": FAMILIES[a["family"]]}) for a in entries]
        for name, entries in SNAPSHOT["net_if_addrs"].items()
    }


def recorded_stats() -> dict[str, SimpleNamespace]:
    return {name: SimpleNamespace(**s) for name, s in SNAPSHOT["net_if_stats"].items()}


def recorded_connections() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            family=FAMILIES[c["family"]],
            type=TYPES[c["type"]],
            laddr=tuple(c["laddr"]),
            raddr=tuple(c["raddr"]),
            status=c["status"],
            pid=c["pid"],
        )
        for c in SNAPSHOT["net_connections"]
    ]


def sock(protocol: str, address: str, port: int, process: str | None = None) -> ListeningSocket:
    return ListeningSocket(protocol=protocol, address=address, port=port, process=process)  # type: ignore[arg-type]


# Sockets held open while the fixtures were recorded (see the fixture README).
EXPECTED_PROC = [
    sock("tcp", "0.0.0.0", 2024),
    sock("tcp", "127.0.0.1", 8631),
    sock("tcp", "::", 8632),
    sock("tcp", "::1", 8633),
    sock("udp", "0.0.0.0", 5353),
    sock("udp", "::", 5355),
]


@pytest.fixture
def recorded_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make psutil answer with the recorded snapshot."""
    monkeypatch.setattr(psutil, "net_if_addrs", recorded_addrs)
    monkeypatch.setattr(psutil, "net_if_stats", recorded_stats)
    monkeypatch.setattr(psutil, "net_connections", lambda kind="inet": recorded_connections())


def proc_root(tmp_path: Path) -> Path:
    (tmp_path / "proc/net").mkdir(parents=True)
    for name in ("tcp", "tcp6", "udp", "udp6"):
        shutil.copy(FIXTURES / f"proc_net_{name}", tmp_path / "proc/net" / name)
    return tmp_path


# --- pure functions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("netmask", "expected"),
    [
        ("255.0.0.0", 8),
        ("255.255.255.0", 24),
        ("255.255.255.255", 32),
        ("0.0.0.0", 0),
        ("255.0.255.0", None),  # not contiguous
        ("ffff:ffff:ffff:ffff::", 64),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128),
        (None, None),
        ("garbage", None),
    ],
)
def test_prefixlen_from_netmask(netmask: str | None, expected: int | None) -> None:
    assert prefixlen_from_netmask(netmask) == expected


def test_build_interfaces_from_recorded_psutil() -> None:
    interfaces = {i.name: i for i in build_interfaces(recorded_addrs(), recorded_stats())}
    assert set(interfaces) == {"lo", "eth0", "ifb0", "ifb1"}
    lo = interfaces["lo"]
    assert lo.is_up is True and lo.mac is None  # all-zero MAC dropped
    assert [(a.family, a.address, a.prefixlen) for a in lo.addresses] == [
        ("ipv4", "127.0.0.1", 8),
        ("ipv6", "::1", 128),
    ]
    eth0 = interfaces["eth0"]
    assert eth0.mac == "02:fc:00:00:00:01"
    assert ("ipv6", "fe80::fc:ff:fe00:1", 64) in [
        (a.family, a.address, a.prefixlen) for a in eth0.addresses
    ]  # zone id "%eth0" stripped
    assert ("ipv4", "192.0.2.2", 24) in [(a.family, a.address, a.prefixlen) for a in eth0.addresses]
    assert interfaces["ifb0"].is_up is False and interfaces["ifb0"].addresses == []


def test_listening_from_recorded_connections() -> None:
    listening = listening_from_connections(recorded_connections(), PIDS.get)
    expected = [
        sock(s.protocol, s.address, s.port, None if s.port == 2024 else "python")
        for s in EXPECTED_PROC
    ]
    assert listening == expected  # no ESTABLISHED, TIME_WAIT or connected UDP socket


def test_decode_proc_address() -> None:
    assert decode_proc_address("0100007F:21B7", "little") == ("127.0.0.1", 8631)
    assert decode_proc_address("7F000001:0016", "big") == ("127.0.0.1", 22)
    assert decode_proc_address("00000000000000000000000001000000:21B9", "little") == ("::1", 8633)


def test_parse_recorded_proc_net_files() -> None:
    def parse(name: str, protocol: str) -> list[ListeningSocket]:
        return parse_proc_net((FIXTURES / f"proc_net_{name}").read_text(), protocol, "little")  # type: ignore[arg-type]

    assert parse("tcp", "tcp") == EXPECTED_PROC[0:2]
    assert parse("tcp6", "tcp") == EXPECTED_PROC[2:4]
    assert parse("udp", "udp") == [EXPECTED_PROC[4]]  # the connected UDP socket is left out
    assert parse("udp6", "udp") == [EXPECTED_PROC[5]]
    assert parse_proc_net("  sl  local_address\n   0: garbage line\n", "tcp") == []


# --- the probe --------------------------------------------------------------


def test_probe_not_live() -> None:
    section = probe(ProbeContext(live=False))
    assert section.status == "unknown"
    assert section.reason == "network state needs a live host"


@pytest.mark.usefixtures("recorded_psutil")
def test_probe_with_recorded_psutil_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "Process", lambda pid: SimpleNamespace(name=lambda: PIDS[pid]))
    section = probe(ProbeContext(is_root=True))
    assert section.status == "ok"
    assert [i.name for i in section.interfaces] == ["lo", "eth0", "ifb0", "ifb1"]
    assert sock("tcp", "::1", 8633, "python") in section.listening
    assert len(section.listening) == 6
    assert section.notes == []


@pytest.mark.usefixtures("recorded_psutil")
def test_probe_non_root_notes_hidden_processes() -> None:
    section = probe(ProbeContext(is_root=False))
    assert section.status == "ok"
    assert any("not root" in n for n in section.notes)


def _denied(kind: str = "inet") -> Iterator[Any]:
    raise psutil.AccessDenied()


@pytest.mark.usefixtures("recorded_psutil")
def test_probe_access_denied_falls_back_to_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "net_connections", _denied)
    section = probe(ProbeContext(root=proc_root(tmp_path)))
    assert section.status == "ok"
    if socket.htonl(1) != 1:  # the fixtures were recorded on a little-endian host
        assert section.listening == EXPECTED_PROC
    assert any("/proc/net" in n and "AccessDenied" in n for n in section.notes)
    assert len(section.interfaces) == 4


@pytest.mark.usefixtures("recorded_psutil")
def test_probe_access_denied_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "net_connections", _denied)
    section = probe(ProbeContext(root=tmp_path))
    assert section.status == "ok"  # interfaces were still read
    assert section.listening == []
    assert any("listening sockets unreadable" in n for n in section.notes)


def test_probe_everything_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "net_connections", _denied)
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: _denied())
    section = probe(ProbeContext(root=tmp_path))
    assert section.status == "unknown"
    assert section.reason is not None and "interfaces unreadable" in section.reason


# --- this machine -----------------------------------------------------------


def test_probe_live_machine() -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        section = probe(ProbeContext())
    finally:
        tcp.close()
        udp.close()
    assert isinstance(section, NetworkSection)
    assert section.status == "ok"
    lo = next(i for i in section.interfaces if i.name == "lo")
    assert ("ipv4", "127.0.0.1", 8) in [(a.family, a.address, a.prefixlen) for a in lo.addresses]
    me = psutil.Process().name()
    assert sock("tcp", "127.0.0.1", tcp_port, me) in section.listening
    assert sock("udp", "127.0.0.1", udp_port, me) in section.listening
