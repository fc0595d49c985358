"""The agency's declared network model and what segmentation probes observed.

Điều 18 khoản 2: the agency declares its zones (vùng ngoài, DMZ, máy chủ, nội
bộ, or its own), their address ranges and the flows it allows between them;
agents standing in the zones probe the other zones and report which ports
they reached and over how many routers.  The collector turns that into a
:class:`NetworkFacts`, which the ``net_*`` fleet rules judge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from agent.report import Report
from policies.model import Text

ZoneKind = Literal["outside", "dmz", "server", "internal", "custom"]
ZONE_KINDS: tuple[ZoneKind, ...] = ("outside", "dmz", "server", "internal", "custom")
# The four zones Điều 18 khoản 2 names for Mức độ 3 and above.
LEVEL3_KINDS: tuple[ZoneKind, ...] = ("outside", "dmz", "server", "internal")

KIND_LABELS: dict[str, Text] = {
    "outside": Text(vi="vùng ngoài", en="outside"),
    "dmz": Text(vi="DMZ", en="DMZ"),
    "server": Text(vi="máy chủ", en="server"),
    "internal": Text(vi="nội bộ", en="internal"),
    "custom": Text(vi="vùng riêng", en="custom zone"),
}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, without an IPv6 zone suffix (``fe80::1%eth0``); None if invalid."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0].strip())
    except ValueError:
        return None


def usable_address(address: str) -> str | None:
    """The address in canonical form, or None for loopback, link-local, multicast, unspecified."""
    ip = parse_address(address)
    if ip is None or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    return str(ip)


def interface_addresses(report: Report | None) -> list[str]:
    """The usable interface addresses of a report whose network section was observed."""
    if report is None or report.network.status != "ok":
        return []
    seen: dict[str, None] = {}
    for interface in report.network.interfaces:
        for entry in interface.addresses:
            usable = usable_address(entry.address)
            if usable:
                seen.setdefault(usable)
    return list(seen)


@dataclass(frozen=True)
class NetZone:
    name: str
    kind: ZoneKind
    cidrs: tuple[str, ...] = ()

    def networks(self) -> list[IpNetwork]:
        return [ipaddress.ip_network(c, strict=False) for c in self.cidrs]

    def label(self) -> Text:
        """How evidence names the zone: its kind, and its own name when that differs."""
        kind = KIND_LABELS[self.kind]
        if self.name.casefold() in (self.kind, kind.vi.casefold(), kind.en.casefold()):
            return kind
        return Text(vi=f"{kind.vi} '{self.name}'", en=f"{kind.en} '{self.name}'")


@dataclass(frozen=True)
class NetFlow:
    """A flow the agency allows: ``src_zone`` may reach ``dst_zone`` on ``protocol``/``port``."""

    src_zone: str
    dst_zone: str
    protocol: Literal["tcp", "udp"]
    port: int


@dataclass(frozen=True)
class ProbeObservation:
    """The latest result of probing one port of one address from one zone.

    ``hops``/``path`` are the traceroute of the target (None when not traced);
    ``source_host`` is the agent that probed, ``observed_at`` when its run ended.
    """

    src_zone: str
    src_address: str
    dst_zone: str
    dst_address: str
    port: int
    state: Literal["open", "closed", "filtered"]
    observed_at: datetime
    source_host: str
    source_host_id: int | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    hops: int | None = None
    path: tuple[str, ...] | None = None

    @property
    def traced(self) -> bool:
        return self.hops is not None or self.path is not None

    def routers(self) -> int | None:
        """Distinct routers on the path (unanswered hops count once each)."""
        if self.path is not None:
            answered = {p for p in self.path if p and p != "*"}
            silent = sum(1 for p in self.path if not p or p == "*")
            counted = len(answered) + silent
            return counted if self.hops is None else min(counted, self.hops)
        return self.hops


@dataclass(frozen=True)
class NetworkFacts:
    """An agency's network model and the latest probe observations (one per key)."""

    zones: Sequence[NetZone]
    flows: Sequence[NetFlow] = ()
    observations: Sequence[ProbeObservation] = ()
    # number of probe runs whose results were received (0: nothing probed yet)
    runs: int = 0
    _by_name: dict[str, NetZone] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {z.name: z for z in self.zones})

    def zone(self, name: str) -> NetZone | None:
        return self._by_name.get(name)

    def kind_of(self, name: str) -> ZoneKind | None:
        zone = self.zone(name)
        return zone.kind if zone else None

    def kinds(self) -> set[str]:
        return {z.kind for z in self.zones}

    def zone_of(self, address: str) -> NetZone | None:
        """The zone of an address: longest-prefix match over the declared CIDRs."""
        return zone_of(self.zones, address)

    def zones_of(self, addresses: Iterable[str]) -> list[NetZone]:
        """The distinct zones of some addresses, in declaration order."""
        names = {z.name for a in addresses if (z := self.zone_of(a)) is not None}
        return [z for z in self.zones if z.name in names]

    def allows(self, src_zone: str, dst_zone: str, port: int, protocol: str = "tcp") -> bool:
        return any(
            f.src_zone == src_zone
            and f.dst_zone == dst_zone
            and f.port == port
            and f.protocol == protocol
            for f in self.flows
        )

    def label(self, name: str) -> Text:
        zone = self.zone(name)
        return zone.label() if zone else Text(vi=name, en=name)


def zone_of(zones: Iterable[NetZone], address: str) -> NetZone | None:
    """Longest-prefix match of ``address`` over the zones' CIDRs; None outside them all."""
    ip = parse_address(address)
    if ip is None:
        return None
    best: tuple[int, NetZone] | None = None
    for zone in zones:
        for net in zone.networks():
            inside = ip.version == net.version and ip in net
            if inside and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, zone)
    return best[1] if best else None
