"""Discovery: which equipment is alive in an agency's zones, and which ports it opens.

:func:`discover` runs nmap (through python-nmap) in two phases:

1. a ping sweep (``-sn``) of the requested CIDRs, split into /24 chunks;
2. a top-ports scan (``--top-ports N``, SYN scan as root, connect scan
   otherwise, ``-T4 --max-retries 1 --host-timeout``) of the live hosts only.

Both phases run their chunks on a few nmap processes at once so that progress
can be reported per chunk without costing more than one plain nmap run.
Names are never resolved (``-n``): a scan sends nothing beyond its targets,
not even DNS queries.

The storage half (:func:`store_scan`, :func:`latest_scan`,
:func:`discovered_devices`) matches live addresses to enrolled agents by the
addresses and MACs of each host's latest report (``network.interfaces``).
python-nmap is imported only by :func:`discover` (extra ``scanner``), so the
API and the fleet rules work without it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from collector import crud
from collector.models import DiscoveredHost as DiscoveredHostRow
from collector.models import DiscoveryScan, utcnow
from policies.fleet import DiscoveredDevice

# phase ("sweep" | "ports"), chunks done, chunks in the phase
ProgressFn = Callable[[str, int, int], None]

MIN_IPV4_PREFIX = 16  # refuse sweeping more than a /16 at once
SWEEP_CHUNK_PREFIX = 24
MAX_TOP_PORTS = 65535


class DiscoveryError(RuntimeError):
    """The scan could not run (nmap or python-nmap missing, invalid targets, nmap error)."""


@dataclass(frozen=True)
class DiscoveredHost:
    address: str
    mac: str | None = None
    hostname: str | None = None
    # (proto, port, service), sorted
    open_ports: list[tuple[str, int, str]] = field(default_factory=list)


# --- targets --------------------------------------------------------------------


def parse_cidrs(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """Validated IPv4 networks; ``ValueError`` with a bilingual message otherwise."""
    networks: list[ipaddress.IPv4Network] = []
    for raw in cidrs:
        try:
            net = ipaddress.ip_network(str(raw).strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"CIDR không hợp lệ / invalid CIDR: {raw!r}") from exc
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"chỉ hỗ trợ quét IPv4 / only IPv4 networks can be swept: {raw}")
        if net.prefixlen < MIN_IPV4_PREFIX:
            raise ValueError(
                f"dải quá lớn (tối đa /{MIN_IPV4_PREFIX}) / network too large "
                f"(at most a /{MIN_IPV4_PREFIX}): {raw}"
            )
        networks.append(net)
    if not networks:
        raise ValueError("chưa có dải địa chỉ nào để quét / no CIDR to scan")
    return list(ipaddress.collapse_addresses(networks))  # type: ignore[arg-type]


def outside_zones(
    cidrs: Iterable[ipaddress.IPv4Network], zones: Iterable[str]
) -> list[ipaddress.IPv4Network]:
    """The requested networks not contained in any declared zone CIDR."""
    declared = []
    for raw in zones:
        try:
            declared.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            continue
    return [
        net
        for net in cidrs
        if not any(
            isinstance(zone, ipaddress.IPv4Network) and net.subnet_of(zone) for zone in declared
        )
    ]


def _sweep_chunks(networks: Sequence[ipaddress.IPv4Network]) -> list[str]:
    chunks: list[str] = []
    for net in networks:
        if net.prefixlen >= SWEEP_CHUNK_PREFIX:
            chunks.append(str(net))
        else:
            chunks += [str(s) for s in net.subnets(new_prefix=SWEEP_CHUNK_PREFIX)]
    return chunks


def _local_addresses() -> set[str]:
    import psutil

    return {
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family.name == "AF_INET"
    }


# --- nmap -----------------------------------------------------------------------


def _port_scanner() -> Any:
    try:
        import nmap
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DiscoveryError(
            "thiếu python-nmap: pip install 'posture-scanner[scanner]' / "
            "python-nmap is missing: pip install 'posture-scanner[scanner]'"
        ) from exc
    if shutil.which("nmap") is None:
        raise DiscoveryError(
            "không tìm thấy nmap: apt-get install nmap / nmap not found: apt-get install nmap"
        )
    return nmap.PortScanner()


def _run(targets: str, arguments: str) -> dict[str, dict[str, Any]]:
    """One nmap run; its hosts as python-nmap dictionaries, by address."""
    import nmap

    scanner = _port_scanner()
    try:
        scanner.scan(hosts=targets, arguments=arguments)
    except nmap.PortScannerError as exc:
        raise DiscoveryError(f"nmap: {exc}") from exc
    return {h: scanner[h] for h in scanner.all_hosts()}


def _hostname(entry: dict[str, Any]) -> str | None:
    for name in entry.get("hostnames") or []:
        if name.get("name"):
            return str(name["name"])
    return None


def _open_ports(entry: dict[str, Any]) -> list[tuple[str, int, str]]:
    ports = []
    for proto in ("tcp", "udp"):
        for port, info in (entry.get(proto) or {}).items():
            if info.get("state") == "open":
                ports.append((proto, int(port), str(info.get("name") or "")))
    return sorted(ports, key=lambda p: (p[0], p[1]))


def _parallel(
    phase: str,
    chunks: Sequence[str],
    arguments: str,
    workers: int,
    progress: ProgressFn | None,
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if progress:
        progress(phase, 0, len(chunks))
    if not chunks:
        return found
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
        futures = [pool.submit(_run, chunk, arguments) for chunk in chunks]
        for done, future in enumerate(as_completed(futures), start=1):
            found.update(future.result())
            if progress:
                progress(phase, done, len(chunks))
    return found


def discover(
    cidrs: Iterable[str],
    top_ports: int = 100,
    progress: ProgressFn | None = None,
    *,
    host_timeout_s: int = 120,
    workers: int = 4,
    chunk_size: int | None = None,
    resolve_names: bool = False,
    exclude_local: bool = True,
) -> list[DiscoveredHost]:
    """Live hosts of ``cidrs`` with their open ports among the ``top_ports`` most common.

    ``progress(phase, done, total)`` is called per finished chunk of each
    phase.  The scanning machine's own addresses are left out unless
    ``exclude_local`` is false.
    """
    if not 1 <= top_ports <= MAX_TOP_PORTS:
        raise ValueError(f"top_ports must be between 1 and {MAX_TOP_PORTS}")
    networks = parse_cidrs(cidrs)
    names = "" if resolve_names else "-n"

    sweep = _parallel(
        "sweep", _sweep_chunks(networks), f"-sn {names} -T4".strip(), workers, progress
    )
    local = _local_addresses() if exclude_local else set()
    live = sorted(
        (
            h
            for h, entry in sweep.items()
            if h not in local and (entry.get("status") or {}).get("state", "up") == "up"
        ),
        key=ipaddress.ip_address,
    )

    method = "-sS" if hasattr(os, "geteuid") and os.geteuid() == 0 else "-sT"
    size = chunk_size or max(1, min(32, math.ceil(len(live) / max(1, workers))))
    chunks = [" ".join(live[i : i + size]) for i in range(0, len(live), size)]
    ports = _parallel(
        "ports",
        chunks,
        f"{names} -Pn {method} --top-ports {top_ports} -T4 --max-retries 1 "
        f"--host-timeout {host_timeout_s}s".strip(),
        workers,
        progress,
    )

    hosts = []
    for address in live:
        swept = sweep[address]
        scanned = ports.get(address, {})
        mac = (swept.get("addresses") or {}).get("mac") or (scanned.get("addresses") or {}).get(
            "mac"
        )
        hosts.append(
            DiscoveredHost(
                address=address,
                mac=normalize_mac(mac),
                hostname=_hostname(swept) or _hostname(scanned),
                open_ports=_open_ports(scanned),
            )
        )
    return hosts


# --- matching with enrolled agents ----------------------------------------------


def normalize_mac(mac: str | None) -> str | None:
    if not mac:
        return None
    value = mac.strip().lower().replace("-", ":")
    return None if value in ("", "00:00:00:00:00:00") else value


@dataclass
class HostIndex:
    """Enrolled hosts of an agency by address and MAC (from their latest reports)."""

    by_address: dict[str, int] = field(default_factory=dict)
    by_mac: dict[str, int] = field(default_factory=dict)
    hostnames: dict[int, str] = field(default_factory=dict)

    def match(self, address: str, mac: str | None = None) -> int | None:
        found = self.by_address.get(address)
        if found is None and mac:
            found = self.by_mac.get(normalize_mac(mac) or "")
        return found


def host_index(session: Session, agency_id: int) -> HostIndex:
    index = HostIndex()
    for host in crud.list_hosts(session, agency_id):
        assert host.id is not None
        index.hostnames[host.id] = host.hostname
        stored = crud.latest_report(session, host)
        network = (stored.body or {}).get("network") if stored is not None else None
        if not isinstance(network, dict):
            continue
        for iface in network.get("interfaces") or []:
            if not isinstance(iface, dict):
                continue
            mac = normalize_mac(iface.get("mac"))
            if mac:
                index.by_mac.setdefault(mac, host.id)
            for addr in iface.get("addresses") or []:
                if isinstance(addr, dict) and addr.get("address"):
                    address = str(addr["address"]).split("%")[0]
                    if address.startswith("127.") or address == "::1":
                        continue
                    index.by_address.setdefault(address, host.id)
    return index


# --- storage --------------------------------------------------------------------


def store_scan(
    session: Session,
    agency_id: int,
    cidrs: Sequence[str],
    hosts: Sequence[DiscoveredHost],
    *,
    started_at: datetime,
    finished_at: datetime | None = None,
    source: str = "collector",
) -> DiscoveryScan:
    """Store a finished scan and its hosts, matched to enrolled agents."""
    index = host_index(session, agency_id)
    scan = DiscoveryScan(
        agency_id=agency_id,
        started_at=started_at,
        finished_at=finished_at or utcnow(),
        cidrs=[str(c) for c in cidrs],
        live_count=len(hosts),
        source=source,
    )
    session.add(scan)
    session.flush()
    assert scan.id is not None
    for h in hosts:
        session.add(
            DiscoveredHostRow(
                scan_id=scan.id,
                agency_id=agency_id,
                address=h.address,
                mac=h.mac,
                hostname=h.hostname,
                open_ports=[list(p) for p in h.open_ports],
                matched_host_id=index.match(h.address, h.mac),
            )
        )
    session.commit()
    session.refresh(scan)
    return scan


def latest_scan(session: Session, agency_id: int) -> DiscoveryScan | None:
    return session.exec(
        select(DiscoveryScan)
        .where(DiscoveryScan.agency_id == agency_id, col(DiscoveryScan.finished_at).is_not(None))
        .order_by(col(DiscoveryScan.finished_at).desc(), col(DiscoveryScan.id).desc())
        .limit(1)
    ).first()


def scan_hosts(session: Session, scan_id: int) -> list[DiscoveredHostRow]:
    rows = session.exec(select(DiscoveredHostRow).where(DiscoveredHostRow.scan_id == scan_id)).all()
    return sorted(rows, key=lambda r: _address_key(r.address))


def _address_key(address: str) -> tuple[int, Any]:
    try:
        return (0, ipaddress.ip_address(address))
    except ValueError:
        return (1, address)


def current_match(row: DiscoveredHostRow, index: HostIndex) -> int | None:
    """The enrolled host of a discovered address now (an agent may have enrolled since)."""
    return index.match(row.address, row.mac) or row.matched_host_id


def port_tuples(row: DiscoveredHostRow) -> tuple[tuple[str, int, str], ...]:
    ports = []
    for item in row.open_ports or []:
        if isinstance(item, list | tuple) and len(item) >= 2:
            service = str(item[2]) if len(item) > 2 and item[2] is not None else ""
            ports.append((str(item[0]), int(item[1]), service))
    return tuple(ports)


def discovered_devices(session: Session, agency_id: int) -> list[DiscoveredDevice] | None:
    """The live hosts of the agency's latest scan for the fleet rules; None: never scanned."""
    scan = latest_scan(session, agency_id)
    if scan is None or scan.id is None:
        return None
    index = host_index(session, agency_id)
    return [
        DiscoveredDevice(
            address=row.address,
            mac=row.mac,
            hostname=row.hostname,
            open_ports=port_tuples(row),
            host_id=current_match(row, index),
            scanned_at=scan.finished_at or scan.started_at,
        )
        for row in scan_hosts(session, scan.id)
    ]
