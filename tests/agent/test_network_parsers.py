"""The /proc/net parsing the agent shares with agentless collection."""

from __future__ import annotations

from pathlib import Path

from agent.probes.base import ProbeContext
from agent.probes.network import (
    PROC_NET_FILES,
    _listening_from_proc,
    listening_from_proc,
    sorted_sockets,
)
from agent.report import ListeningSocket

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "network"
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def sock(protocol: str, address: str, port: int, process: str | None = None) -> ListeningSocket:
    return ListeningSocket(protocol=protocol, address=address, port=port, process=process)  # type: ignore[arg-type]


def recorded(path: str) -> str | None:
    """The recorded little-endian tables, as a remote file reader would return them."""
    name = path.rsplit("/", 1)[1]
    return (FIXTURES / f"proc_net_{name}").read_text()


def test_listening_from_proc_reads_every_table_through_the_reader() -> None:
    asked: list[str] = []

    def reader(path: str) -> str | None:
        asked.append(path)
        return recorded(path)

    found = listening_from_proc(reader, "little")
    assert asked == [path for path, _ in PROC_NET_FILES]
    assert found == [
        sock("tcp", "0.0.0.0", 2024),
        sock("tcp", "127.0.0.1", 8631),
        sock("tcp", "::", 8632),
        sock("tcp", "::1", 8633),
        sock("udp", "0.0.0.0", 5353),
        sock("udp", "::", 5355),
    ]


def test_listening_from_proc_uses_the_byte_order_of_the_source_host() -> None:
    # The same listener (127.0.0.1:22) as a big-endian host (s390x) prints it.
    big = HEADER + "   0: 7F000001:0016 00000000:0000 0A 00000000:00000000 00:00000000 0 0\n"
    tables = {"/proc/net/tcp": big}
    assert listening_from_proc(tables.get, "big") == [sock("tcp", "127.0.0.1", 22)]
    assert listening_from_proc(tables.get, "little") == [sock("tcp", "1.0.0.127", 22)]


def test_listening_from_proc_without_any_table() -> None:
    assert listening_from_proc(lambda path: None) is None
    only_tcp = {"/proc/net/tcp": HEADER}  # IPv6 disabled, nothing listening
    assert listening_from_proc(only_tcp.get) == []


def test_probe_helper_still_reads_under_the_context_root(tmp_path: Path) -> None:
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/tcp").write_text(recorded("/proc/net/tcp") or "")
    found = _listening_from_proc(ProbeContext(root=tmp_path))
    assert found is not None and sock("tcp", "127.0.0.1", 8631) in found


def test_sorted_sockets_deduplicates_and_orders() -> None:
    messy = [
        sock("udp", "0.0.0.0", 53, "dnsmasq"),
        sock("tcp", "::", 22, "sshd"),
        sock("tcp", "0.0.0.0", 22, "sshd"),
        sock("tcp", "::", 22, "sshd"),  # SO_REUSEPORT twin
    ]
    assert sorted_sockets(messy) == [
        sock("tcp", "0.0.0.0", 22, "sshd"),
        sock("tcp", "::", 22, "sshd"),
        sock("udp", "0.0.0.0", 53, "dnsmasq"),
    ]
