"""Network facts of an agentless target, read from remote commands and files.

The agent's network probe asks psutil, which only sees the machine it runs on;
agentless collection reads the same facts from the SSH peer instead and builds
the same ``NetworkSection`` (and the plaintext services of ``EncryptionSection``).

Interfaces, first source that works:

1. ``ip -j addr show`` (iproute2 4.13 and later: JSON);
2. ``ip -o addr show`` and ``ip -o link show`` (one line per address / link);
3. ``/proc/net/dev`` (names), ``/proc/net/if_inet6`` (IPv6 addresses) and
   ``/sys/class/net/<name>/{address,flags,operstate}``; the kernel exposes no
   per-interface IPv4 address in a text file, so those are then missing (noted).

Listening sockets: ``ss -H -l -t -u -n -p``, else ``/proc/net/{tcp,tcp6,udp,udp6}``
parsed by the agent's own parser in the *remote* host's byte order (no process
names there).

An interface is up like psutil's ``isup``: administratively up and running
(``ip`` prints ``NO-CARRIER`` for an up interface that is not running).

This module has no SSH code: it only needs a ``ProbeContext`` whose runner and
``read_text`` reach the remote host, so its parsers are testable on their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Literal

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.probes.encryption import SYS_BLOCK
from agent.probes.encryption import probe_live as encryption_probe_live
from agent.probes.network import listening_from_proc, normalize_ip, normalize_mac, sorted_sockets
from agent.report import (
    EncryptionSection,
    InterfaceAddress,
    ListeningSocket,
    NetworkInterface,
    NetworkSection,
)

IP_JSON_ARGV = ("ip", "-j", "addr", "show")
IP_ADDR_ARGV = ("ip", "-o", "addr", "show")
IP_LINK_ARGV = ("ip", "-o", "link", "show")
SS_ARGV = ("ss", "-H", "-l", "-t", "-u", "-n", "-p")
UNAME_ARGV = ("uname", "-m")
COMMAND_TIMEOUT = 15.0

PROC_NET_DEV = "/proc/net/dev"
PROC_IF_INET6 = "/proc/net/if_inet6"
SYS_CLASS_NET = "/sys/class/net"
PROC_MOUNTS = "/proc/self/mounts"
PROC_FILESYSTEMS = "/proc/filesystems"

IFF_UP = 0x1
# ``uname -m`` of big-endian Linux architectures; /proc/net addresses are native words.
BIG_ENDIAN_MACHINES = frozenset(
    {"s390", "s390x", "ppc", "ppc64", "mips", "mips64", "sparc", "sparc64", "m68k"}
    | {"parisc", "parisc64", "armeb", "aarch64_be", "sh4eb", "or1k"}
)
SYS_BLOCK_NOTE = f"{SYS_BLOCK} not available agentless: volumes and / decided from lsblk"
NOT_ROOT_NOTE = "not root: owning process of other users' sockets is not visible"

_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2})+$")
_SS_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=')

ReadText = Callable[[str], str | None]


# --- pure parsers -------------------------------------------------------------------


def _mac(address: object) -> str | None:
    """A hardware address as the agent reports it; None for tunnels' IP-shaped addresses."""
    if not isinstance(address, str) or not _MAC.match(address.lower()):
        return None
    return normalize_mac(address)


def _is_up(flags: Sequence[str]) -> bool:
    return "UP" in flags and "NO-CARRIER" not in flags


def _address(family: str, local: str, prefixlen: int | None) -> InterfaceAddress | None:
    kind: Literal["ipv4", "ipv6"]
    if family == "inet":
        kind = "ipv4"
    elif family == "inet6":
        kind = "ipv6"
    else:
        return None
    return InterfaceAddress(family=kind, address=normalize_ip(local), prefixlen=prefixlen)


def parse_ip_json(text: str) -> list[NetworkInterface]:
    """Interfaces of ``ip -j addr show``.  Raises ValueError if it is not such a document."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("not an 'ip -j addr show' document")
    interfaces: list[NetworkInterface] = []
    for raw in data:
        if not isinstance(raw, dict) or not isinstance(raw.get("ifname"), str):
            continue  # ip prints {} for links it could not describe
        flags = [f for f in raw.get("flags") or [] if isinstance(f, str)]
        addresses: list[InterfaceAddress] = []
        for info in raw.get("addr_info") or []:
            if not isinstance(info, dict) or not isinstance(info.get("local"), str):
                continue
            prefixlen = info.get("prefixlen")
            entry = _address(
                str(info.get("family")),
                info["local"],
                prefixlen if isinstance(prefixlen, int) else None,
            )
            if entry is not None:
                addresses.append(entry)
        interfaces.append(
            NetworkInterface(
                name=raw["ifname"],
                mac=_mac(raw.get("address")),
                is_up=_is_up(flags),
                addresses=addresses,
            )
        )
    return interfaces


def _prefixed(value: str) -> tuple[str, int | None]:
    address, _, length = value.partition("/")
    return address, int(length) if length.isdigit() else None


def parse_ip_oneline(addr_text: str, link_text: str = "") -> list[NetworkInterface]:
    """Interfaces of ``ip -o addr show`` (addresses) and ``ip -o link show`` (MAC, flags).

    Raises ValueError when neither output has a single line of the expected shape.
    """
    order: list[str] = []
    macs: dict[str, str | None] = {}
    flags: dict[str, list[str]] = {}
    addresses: dict[str, list[InterfaceAddress]] = {}

    for line in link_text.splitlines():
        # 2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ... \    link/ether 02:.. brd ..
        match = re.match(r"^\d+:\s+([^:\s]+):\s+<([^>]*)>", line)
        if match is None:
            continue
        name = match.group(1).split("@", 1)[0]  # veth0@if5: the peer's index
        order.append(name)
        flags[name] = [f for f in match.group(2).split(",") if f]
        link = re.search(r"link/\S+\s+(\S+)", line)
        macs[name] = _mac(link.group(1)) if link else None

    for line in addr_text.splitlines():
        # 1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever ...
        fields = line.replace("\\", " ").split()
        if len(fields) < 4 or not fields[0].rstrip(":").isdigit():
            continue
        name, family = fields[1].split("@", 1)[0], fields[2]
        local, prefixlen = _prefixed(fields[3])
        if prefixlen is None and len(fields) >= 6 and fields[4] == "peer":
            prefixlen = _prefixed(fields[5])[1]  # point-to-point: the length follows the peer
        entry = _address(family, local, prefixlen)
        if entry is None:
            continue
        if name not in order:
            order.append(name)
        addresses.setdefault(name, []).append(entry)

    if not order:
        raise ValueError("no interface in the 'ip -o' output")
    return [
        NetworkInterface(
            name=name,
            mac=macs.get(name),
            is_up=_is_up(flags[name]) if name in flags else None,
            addresses=addresses.get(name, []),
        )
        for name in order
    ]


def parse_proc_net_dev(text: str) -> list[str]:
    """Interface names of ``/proc/net/dev`` (two header lines, then ``name: counters``)."""
    names: list[str] = []
    for line in text.splitlines()[2:]:
        name, sep, _ = line.partition(":")
        if sep and name.strip():
            names.append(name.strip())
    return names


def parse_if_inet6(text: str) -> dict[str, list[InterfaceAddress]]:
    """IPv6 addresses per interface of ``/proc/net/if_inet6`` (hex address, index,
    prefix length in hex, scope, flags, name)."""
    found: dict[str, list[InterfaceAddress]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        try:
            packed = bytes.fromhex(fields[0])
            prefixlen = int(fields[2], 16)
        except ValueError:
            continue
        address = ":".join(packed[i : i + 2].hex() for i in range(0, 16, 2))
        entry = _address("inet6", address, prefixlen)
        if entry is not None:
            found.setdefault(fields[5], []).append(entry)
    return found


def interfaces_from_proc(read_text: ReadText) -> list[NetworkInterface] | None:
    """Interfaces from ``/proc`` and ``/sys`` files; None if ``/proc/net/dev`` is unreadable."""
    dev = read_text(PROC_NET_DEV)
    if dev is None:
        return None
    inet6 = parse_if_inet6(read_text(PROC_IF_INET6) or "")
    interfaces: list[NetworkInterface] = []
    for name in parse_proc_net_dev(dev):
        base = f"{SYS_CLASS_NET}/{name}"
        flags_text = (read_text(f"{base}/flags") or "").strip()
        operstate = (read_text(f"{base}/operstate") or "").strip()
        is_up: bool | None = None
        try:
            # IFF_RUNNING is not in sysfs' flags: the kernel sets it when the
            # operational state is up or unknown (netif_oper_up).
            is_up = bool(int(flags_text, 16) & IFF_UP) and operstate in ("up", "unknown")
        except ValueError:
            is_up = None
        interfaces.append(
            NetworkInterface(
                name=name,
                mac=_mac((read_text(f"{base}/address") or "").strip()),
                is_up=is_up,
                addresses=inet6.get(name, []),
            )
        )
    return interfaces


def _ss_endpoint(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    if host == "*":
        host = "::"  # ss prints an IPv6 wildcard that also accepts IPv4 as '*'
    return normalize_ip(host), int(port)


def parse_ss(text: str) -> list[ListeningSocket]:
    """Listening sockets of ``ss -H -l -t -u -n -p``.

    Columns: netid, state, recv-q, send-q, local, peer, then ``users:((...))``
    when the process is visible.  A socket shared by several processes is
    listed once per process name, like the agent does from psutil.
    """
    found: list[ListeningSocket] = []
    for line in text.splitlines():
        fields = line.split(None, 6)
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            continue
        protocol: Literal["tcp", "udp"] = "tcp" if fields[0] == "tcp" else "udp"
        if fields[1] != ("LISTEN" if protocol == "tcp" else "UNCONN"):
            continue
        endpoint = _ss_endpoint(fields[4])
        if endpoint is None:
            continue
        if protocol == "udp" and fields[5].rpartition(":")[2] not in ("*", "0"):
            continue  # connected UDP socket: a client, not a service
        names = list(dict.fromkeys(_SS_PROCESS.findall(fields[6]))) if len(fields) > 6 else []
        for process in names or [None]:
            found.append(
                ListeningSocket(
                    protocol=protocol, address=endpoint[0], port=endpoint[1], process=process
                )
            )
    return sorted_sockets(found)


def byteorder_of(machine: str) -> Literal["little", "big"]:
    return "big" if machine.strip() in BIG_ENDIAN_MACHINES else "little"


def parse_mounts(mounts_text: str, filesystems_text: str | None) -> list[tuple[str, str]]:
    """(device, mountpoint) of mounted block-device filesystems, like psutil's
    ``disk_partitions(all=False)``: a device, and a type not marked ``nodev``."""
    block_types: set[str] | None = None
    if filesystems_text is not None:
        block_types = set()
        for line in filesystems_text.splitlines():
            fields = line.split()
            if len(fields) == 1 or (len(fields) == 2 and fields[1] == "zfs"):
                block_types.add(fields[-1])
    mounts: list[tuple[str, str]] = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] in ("none", ""):
            continue
        if block_types is not None and fields[2] not in block_types:
            continue
        if block_types is None and not fields[0].startswith("/dev/"):
            continue
        mountpoint = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        mounts.append((fields[0], mountpoint))
    return mounts


# --- remote probes ---------------------------------------------------------------------


def _run(ctx: ProbeContext, argv: Sequence[str], failures: list[str]) -> str | None:
    """stdout of a remote command; None (with the reason in ``failures``) if it failed."""
    try:
        result = ctx.runner.run(argv, timeout=COMMAND_TIMEOUT)
    except (ToolMissing, CommandTimeout, OSError) as exc:
        failures.append(str(exc))
        return None
    if not result.ok:
        detail = result.stderr.strip().splitlines()[:1]
        failures.append(
            f"'{' '.join(argv)}' failed (exit {result.returncode})"
            + (f": {detail[0]}" if detail else "")
        )
        return None
    return result.stdout


def _interfaces_from_ip(
    ctx: ProbeContext, failures: list[str]
) -> tuple[list[NetworkInterface], str] | None:
    text = _run(ctx, IP_JSON_ARGV, failures)
    if text is not None:
        try:
            return parse_ip_json(text), "ip -j"
        except ValueError as exc:
            failures.append(f"'ip -j addr show' output not understood: {exc}")
    if str(ToolMissing("ip")) in failures:
        return None  # no point asking a missing 'ip' again
    addr_text = _run(ctx, IP_ADDR_ARGV, failures)
    if addr_text is None:
        return None
    link_text = _run(ctx, IP_LINK_ARGV, failures) or ""
    try:
        return parse_ip_oneline(addr_text, link_text), "ip -o"
    except ValueError as exc:
        failures.append(str(exc))
        return None


def remote_interfaces(ctx: ProbeContext, notes: list[str]) -> list[NetworkInterface] | None:
    """Interfaces of the remote host; None (reason in ``notes``) if no source worked."""
    failures: list[str] = []
    found = _interfaces_from_ip(ctx, failures)
    if found is not None:
        interfaces, source = found
        if failures:
            notes.append(f"interfaces read with '{source}' ({'; '.join(failures)})")
        return interfaces
    interfaces = interfaces_from_proc(ctx.read_text)
    if interfaces is None:
        notes.append(f"interfaces unreadable: {'; '.join(failures)}; {PROC_NET_DEV} unreadable")
        return None
    notes.append(
        f"interfaces read from {PROC_NET_DEV} and {SYS_CLASS_NET}, without IPv4 addresses "
        f"({'; '.join(failures)})"
    )
    return interfaces


def remote_byteorder(ctx: ProbeContext) -> Literal["little", "big"]:
    machine = _run(ctx, UNAME_ARGV, [])
    return byteorder_of(machine or "")


def remote_listening(ctx: ProbeContext, notes: list[str]) -> list[ListeningSocket] | None:
    """Listening sockets of the remote host; None (reason in ``notes``) if unreadable."""
    failures: list[str] = []
    text = _run(ctx, SS_ARGV, failures)
    if text is not None:
        if not ctx.is_root:
            notes.append(NOT_ROOT_NOTE)
        return parse_ss(text)
    listening = listening_from_proc(ctx.read_text, remote_byteorder(ctx))
    if listening is None:
        notes.append(f"listening sockets unreadable: {'; '.join(failures)}; /proc/net unreadable")
        return None
    notes.append(f"listening sockets read from /proc/net, without process names ({failures[0]})")
    return listening


def network_probe(ctx: ProbeContext) -> NetworkSection:
    """The agent's network probe for a remote host."""
    notes: list[str] = []
    interfaces = remote_interfaces(ctx, notes)
    listening = remote_listening(ctx, notes)
    if interfaces is None and listening is None:
        return unknown(NetworkSection, "; ".join(notes))
    return NetworkSection(interfaces=interfaces or [], listening=listening or [], notes=notes)


def remote_mounts(ctx: ProbeContext) -> list[tuple[str, str]]:
    text = ctx.read_text(PROC_MOUNTS)
    if text is None:
        raise OSError(f"{PROC_MOUNTS} unreadable")
    return parse_mounts(text, ctx.read_text(PROC_FILESYSTEMS))


def encryption_probe(ctx: ProbeContext) -> EncryptionSection:
    """The agent's encryption probe with the remote mounts and listening sockets."""

    def tcp_listeners(probe_ctx: ProbeContext, notes: list[str]) -> list[ListeningSocket] | None:
        sockets = remote_listening(probe_ctx, notes)
        if sockets is None:
            return None
        if NOT_ROOT_NOTE in notes:
            notes.remove(NOT_ROOT_NOTE)  # the probe adds it itself
        return [s for s in sockets if s.protocol == "tcp"]

    section = encryption_probe_live(
        ctx, mounts_reader=lambda: remote_mounts(ctx), sockets_reader=tcp_listeners
    )
    # sysfs is not copied to the staging root: lsblk (run remotely) stands in for it.
    notes = [SYS_BLOCK_NOTE if n == f"{SYS_BLOCK} unreadable" else n for n in section.notes]
    return section.model_copy(update={"notes": notes})


__all__ = [
    "encryption_probe",
    "interfaces_from_proc",
    "network_probe",
    "parse_if_inet6",
    "parse_ip_json",
    "parse_ip_oneline",
    "parse_mounts",
    "parse_proc_net_dev",
    "parse_ss",
    "remote_interfaces",
    "remote_listening",
]
