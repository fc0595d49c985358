"""Network interfaces and listening sockets of the running host.

Interfaces come from psutil ``net_if_addrs()``/``net_if_stats()``.  Listening
sockets come from psutil ``net_connections(kind="inet")``: TCP sockets in
LISTEN state and UDP sockets without a remote peer (bound, unconnected: the
UDP equivalent of listening).  The owning process is resolved from the pid;
without root, sockets of other users' processes have no pid.

Where psutil is denied the socket table (``AccessDenied`` on some
platforms), ``/proc/net/{tcp,tcp6,udp,udp6}`` are parsed instead; that table
has no process information.

Everything here is live state: on an alternate root the section is unknown.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import psutil

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import InterfaceAddress, ListeningSocket, NetworkInterface, NetworkSection

Protocol = Literal["tcp", "udp"]

PROC_NET_FILES: tuple[tuple[str, Protocol], ...] = (
    ("/proc/net/tcp", "tcp"),
    ("/proc/net/tcp6", "tcp"),
    ("/proc/net/udp", "udp"),
    ("/proc/net/udp6", "udp"),
)
TCP_LISTEN = 0x0A  # include/net/tcp_states.h: TCP_LISTEN
UDP_UNCONNECTED = 0x07  # TCP_CLOSE: a bound UDP socket with no peer

# psutil.AF_LINK is AF_PACKET on Linux, AF_LINK on BSD/macOS, -1 on Windows.
_AF_LINK_FAMILIES: frozenset[int] = frozenset(
    f
    for f in (
        psutil.AF_LINK,
        getattr(socket, "AF_PACKET", None),
        getattr(socket, "AF_LINK", None),
    )
    if f is not None
)


def prefixlen_from_netmask(netmask: str | None) -> int | None:
    """Prefix length of a dotted IPv4 or IPv6 netmask; None if absent or non-contiguous."""
    if not netmask:
        return None
    try:
        mask = int(ipaddress.ip_address(netmask.split("%", 1)[0]))
    except ValueError:
        return None
    bits = 32 if "." in netmask else 128
    ones = bin(mask).count("1")
    # A valid mask is `ones` leading one-bits followed by zeros.
    expected = ((1 << ones) - 1) << (bits - ones) if ones else 0
    return ones if mask == expected else None


def normalize_ip(address: str) -> str:
    """Drop an IPv6 zone suffix (``fe80::1%eth0``) and canonicalise."""
    bare = address.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


def normalize_mac(address: str | None) -> str | None:
    if not address:
        return None
    mac = address.replace("-", ":").lower()
    if all(part in ("0", "00") for part in mac.split(":")):
        return None  # loopback and tunnels have no hardware address
    return mac


def build_interfaces(
    addrs: Mapping[str, Sequence[Any]], stats: Mapping[str, Any]
) -> list[NetworkInterface]:
    """Interfaces from psutil-shaped ``net_if_addrs()`` and ``net_if_stats()`` results.

    Address entries need ``family``, ``address`` and ``netmask``; stats
    entries need ``isup``.
    """
    interfaces: list[NetworkInterface] = []
    for name in [*addrs, *(n for n in stats if n not in addrs)]:
        mac: str | None = None
        addresses: list[InterfaceAddress] = []
        for entry in addrs.get(name, ()):
            if entry.family == socket.AF_INET:
                family: Literal["ipv4", "ipv6"] = "ipv4"
            elif entry.family == socket.AF_INET6:
                family = "ipv6"
            elif entry.family in _AF_LINK_FAMILIES:
                mac = mac or normalize_mac(entry.address)
                continue
            else:
                continue
            addresses.append(
                InterfaceAddress(
                    family=family,
                    address=normalize_ip(entry.address),
                    prefixlen=prefixlen_from_netmask(entry.netmask),
                )
            )
        stat = stats.get(name)
        interfaces.append(
            NetworkInterface(
                name=name,
                mac=mac,
                is_up=bool(stat.isup) if stat is not None else None,
                addresses=addresses,
            )
        )
    return interfaces


def listening_from_connections(
    connections: Iterable[Any], process_name: Callable[[int], str | None]
) -> list[ListeningSocket]:
    """Listening sockets from psutil-shaped ``net_connections()`` entries.

    Entries need ``type``, ``laddr``, ``raddr``, ``status`` and ``pid``.
    """
    found: list[ListeningSocket] = []
    for conn in connections:
        if not conn.laddr:
            continue
        if conn.type == socket.SOCK_STREAM:
            if conn.status != "LISTEN":
                continue
            protocol: Protocol = "tcp"
        elif conn.type == socket.SOCK_DGRAM:
            if conn.raddr:
                continue  # connected UDP socket: a client, not a service
            protocol = "udp"
        else:
            continue
        ip, port = conn.laddr[0], conn.laddr[1]
        found.append(
            ListeningSocket(
                protocol=protocol,
                address=normalize_ip(ip),
                port=int(port),
                process=process_name(conn.pid) if conn.pid else None,
            )
        )
    return _sorted(found)


def decode_proc_address(hex_address: str, byteorder: str = sys.byteorder) -> tuple[str, int]:
    """Decode ``/proc/net`` ``ADDR:PORT`` (address in host byte order words, port big-endian)."""
    hex_ip, _, hex_port = hex_address.partition(":")
    raw = bytes.fromhex(hex_ip)
    if byteorder == "little":
        # The kernel prints each 32-bit word of the address as a native integer.
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw)), int(hex_port, 16)


def parse_proc_net(
    text: str, protocol: Protocol, byteorder: str = sys.byteorder
) -> list[ListeningSocket]:
    """Listening sockets in one ``/proc/net/{tcp,tcp6,udp,udp6}`` table."""
    wanted = TCP_LISTEN if protocol == "tcp" else UDP_UNCONNECTED
    found: list[ListeningSocket] = []
    for line in text.splitlines()[1:]:  # first line is the header
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            state = int(fields[3], 16)
            if state != wanted:
                continue
            address, port = decode_proc_address(fields[1], byteorder)
            remote_ip, remote_port = decode_proc_address(fields[2], byteorder)
        except ValueError:
            continue
        if protocol == "udp" and (remote_port or remote_ip not in ("0.0.0.0", "::")):
            continue  # connected UDP socket: a client, not a service
        found.append(ListeningSocket(protocol=protocol, address=address, port=port))
    return _sorted(found)


def sorted_sockets(sockets: Iterable[ListeningSocket]) -> list[ListeningSocket]:
    """Deduplicated (one socket per process and reuseport twin) and ordered."""
    unique = {(s.protocol, s.address, s.port, s.process): s for s in sockets}
    return sorted(unique.values(), key=lambda s: (s.protocol, s.port, s.address, s.process or ""))


_sorted = sorted_sockets


def process_namer() -> Callable[[int], str | None]:
    """pid → process name, memoised for one socket-table walk."""
    cache: dict[int, str | None] = {}

    def name_of(pid: int) -> str | None:
        if pid not in cache:
            try:
                cache[pid] = psutil.Process(pid).name() or None
            except (psutil.Error, OSError):
                cache[pid] = None
        return cache[pid]

    return name_of


def listening_from_proc(
    read_text: Callable[[str], str | None], byteorder: str = sys.byteorder
) -> list[ListeningSocket] | None:
    """Listening sockets of the ``/proc/net`` tables ``read_text`` returns; None if none is.

    ``byteorder`` is that of the host the tables come from (agentless: the remote one).
    """
    tables_read = 0
    found: list[ListeningSocket] = []
    for path, protocol in PROC_NET_FILES:
        text = read_text(path)
        if text is None:
            continue  # tcp6/udp6 are absent when IPv6 is disabled
        tables_read += 1
        found.extend(parse_proc_net(text, protocol, byteorder))
    return _sorted(found) if tables_read else None


def _listening_from_proc(ctx: ProbeContext) -> list[ListeningSocket] | None:
    return listening_from_proc(ctx.read_text)


def probe(ctx: ProbeContext) -> NetworkSection:
    if not ctx.live:
        return unknown(NetworkSection, "network state needs a live host")
    notes: list[str] = []
    interfaces: list[NetworkInterface] | None
    try:
        interfaces = build_interfaces(psutil.net_if_addrs(), psutil.net_if_stats())
    except (OSError, psutil.Error) as exc:
        interfaces = None
        notes.append(f"interfaces unreadable: {exc}")

    listening: list[ListeningSocket] | None
    try:
        listening = listening_from_connections(
            psutil.net_connections(kind="inet"), process_namer()
        )
        if not ctx.is_root:
            notes.append("not root: owning process of other users' sockets is not visible")
    except (OSError, psutil.Error) as exc:
        listening = _listening_from_proc(ctx)
        if listening is None:
            notes.append(f"listening sockets unreadable: {type(exc).__name__}")
        else:
            notes.append(
                f"psutil socket table denied ({type(exc).__name__}); read /proc/net "
                "instead, without process names"
            )

    if interfaces is None and listening is None:
        return unknown(NetworkSection, "; ".join(notes))
    return NetworkSection(interfaces=interfaces or [], listening=listening or [], notes=notes)
