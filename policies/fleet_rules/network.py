"""Điều 18 khoản 2: the network model suited to the level, checked by probes between zones.

The facts are :attr:`policies.fleet.FleetContext.network`: the zones and
allowed flows the agency declared, and what agents standing in the zones
observed when probing the others (open ports, routers on the path).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from policies.fleet import FleetContext, FleetHost
from policies.model import Text
from policies.network_model import (
    KIND_LABELS,
    LEVEL3_KINDS,
    NetworkFacts,
    ProbeObservation,
    interface_addresses,
)
from policies.registry import Outcome, failed, fleet_rule, passed, undetermined

# Zones from which traffic into the protected zones is suspect, and those zones.
EXPOSED_KINDS = frozenset({"outside", "dmz"})
PROTECTED_KINDS = frozenset({"internal", "server"})
# "ít nhất 02 tường lửa" (Mức độ 3+); "01 tường lửa" (Mức độ 2) — numbers stated by the text.
LEVEL3_FILTERING_HOPS = 2
LEVEL2_FILTERING_HOPS = 1


def _model(ctx: FleetContext) -> NetworkFacts | None:
    net = ctx.network
    return net if net is not None and net.zones else None


def _no_model() -> Outcome:
    return undetermined("no_model")


def _lists(prefix: str, texts: Sequence[Text]) -> dict[str, Any]:
    """Bilingual item lists as plain strings (``{prefix}_vi`` / ``{prefix}_en``)."""
    return {f"{prefix}_vi": [t.vi for t in texts], f"{prefix}_en": [t.en for t in texts]}


def _flow_text(net: NetworkFacts, obs: ProbeObservation) -> Text:
    src, dst = net.label(obs.src_zone), net.label(obs.dst_zone)
    tail = f"{obs.dst_address} {obs.protocol}/{obs.port}"
    return Text(
        vi=f"{src.vi} ({obs.src_address}) → {dst.vi} {tail}",
        en=f"{src.en} ({obs.src_address}) → {dst.en} {tail}",
    )


def _flow_data(obs: ProbeObservation) -> dict[str, Any]:
    return {
        "src_zone": obs.src_zone,
        "src_address": obs.src_address,
        "dst_zone": obs.dst_zone,
        "dst_address": obs.dst_address,
        "protocol": obs.protocol,
        "port": obs.port,
        "state": obs.state,
        "source_host": obs.source_host,
        "observed_at": obs.observed_at.isoformat(),
    }


def _between(
    net: NetworkFacts,
    observations: Iterable[ProbeObservation],
    src: Iterable[str],
    dst: Iterable[str],
) -> list[ProbeObservation]:
    src_kinds, dst_kinds = set(src), set(dst)
    return [
        o
        for o in observations
        if net.kind_of(o.src_zone) in src_kinds and net.kind_of(o.dst_zone) in dst_kinds
    ]


def _undeclared_open(net: NetworkFacts, observed: Iterable[ProbeObservation]) -> Outcome | None:
    """A failure naming each open port that no declared flow allows; None when there is none."""
    offending = [
        o
        for o in observed
        if o.state == "open" and not net.allows(o.src_zone, o.dst_zone, o.port, o.protocol)
    ]
    if not offending:
        return None
    return failed(
        "undeclared",
        count=len(offending),
        flows=[_flow_data(o) for o in offending],
        **_lists("items", [_flow_text(net, o) for o in offending]),
    )


@fleet_rule("net_zone_model")
def net_zone_model(ctx: FleetContext) -> Outcome:
    net = _model(ctx)
    if net is None:
        return _no_model()
    zones = [f"{z.name} ({z.kind})" for z in net.zones]
    if ctx.level < 3:
        return Outcome("not_applicable", "below_level3", {"level": ctx.level, "zones": zones})
    missing = [KIND_LABELS[k] for k in LEVEL3_KINDS if k not in net.kinds()]
    if missing:
        return failed("missing", zones=zones, **_lists("missing", missing))
    return passed("complete", zones=zones)


@fleet_rule("net_no_undeclared_flows")
def net_no_undeclared_flows(ctx: FleetContext) -> Outcome:
    net = _model(ctx)
    if net is None:
        return _no_model()
    observed = _between(net, net.observations, EXPOSED_KINDS, PROTECTED_KINDS)
    if not observed:
        return undetermined("no_probes")
    failure = _undeclared_open(net, observed)
    if failure is not None:
        return failure
    targets = {(o.dst_address, o.port) for o in observed}
    return passed("none", probed=len(targets))


@fleet_rule("net_dmz_services_declared")
def net_dmz_services_declared(ctx: FleetContext) -> Outcome:
    net = _model(ctx)
    if net is None:
        return _no_model()
    if "dmz" not in net.kinds():
        return undetermined("no_dmz")
    observed = _between(net, net.observations, {"outside"}, {"dmz"})
    if not observed:
        return undetermined("no_probes")
    failure = _undeclared_open(net, observed)
    if failure is not None:
        return failure
    published = sorted(
        {f"{o.dst_address} {o.protocol}/{o.port}" for o in observed if o.state == "open"}
    )
    return passed("declared", published=published, probed=len(observed))


def _path_text(net: NetworkFacts, obs: ProbeObservation, routers: int) -> Text:
    src, dst = net.label(obs.src_zone), net.label(obs.dst_zone)
    via = ", ".join(p for p in obs.path or () if p) or "—"
    return Text(
        vi=f"{src.vi} ({obs.src_address}) → {dst.vi} {obs.dst_address}: "
        f"{routers} bộ định tuyến ({via})",
        en=f"{src.en} ({obs.src_address}) → {dst.en} {obs.dst_address}: "
        f"{routers} router(s) ({via})",
    )


@fleet_rule("net_filtering_hops")
def net_filtering_hops(ctx: FleetContext) -> Outcome:
    net = _model(ctx)
    if net is None:
        return _no_model()
    required = LEVEL3_FILTERING_HOPS if ctx.level >= 3 else LEVEL2_FILTERING_HOPS
    paths: dict[tuple[str, str, str], ProbeObservation] = {}
    for obs in _between(net, net.observations, {"outside"}, PROTECTED_KINDS):
        if obs.routers() is None:
            continue
        key = (obs.src_zone, obs.src_address, obs.dst_address)
        if key not in paths or obs.observed_at > paths[key].observed_at:
            paths[key] = obs
    if not paths:
        return undetermined("no_trace", required=required)
    short = []
    for obs in paths.values():
        routers = obs.routers() or 0
        if routers < required:
            short.append(_path_text(net, obs, routers))
    if short:
        return failed("too_few", required=required, count=len(short), **_lists("paths", short))
    fewest = min(o.routers() or 0 for o in paths.values())
    return passed("enough", required=required, paths=len(paths), fewest=fewest)


def _boundary_hosts(net: NetworkFacts, hosts: Iterable[FleetHost]) -> list[tuple[FleetHost, str]]:
    """Hosts with addresses in two or more zones, with those zones' names."""
    found = []
    for host in hosts:
        zones = net.zones_of(interface_addresses(host.report))
        if len(zones) >= 2:
            found.append((host, " / ".join(z.name for z in zones)))
    return found


@fleet_rule("net_boundary_ids")
def net_boundary_ids(ctx: FleetContext) -> Outcome:
    net = _model(ctx)
    if net is None:
        return _no_model()
    boundary = _boundary_hosts(net, ctx.hosts)
    if not boundary:
        return undetermined("no_boundary_agent")
    with_ids: list[str] = []
    without: list[str] = []
    unclear: list[str] = []
    for host, zones in boundary:
        finding = host.findings.get("ids_running")
        entry = f"{host.hostname} ({zones})"
        if finding is None or finding.status == "unknown":
            unclear.append(entry)
        elif finding.status in ("pass", "waived"):
            with_ids.append(entry)
        elif finding.status == "fail":
            without.append(entry)
        else:
            unclear.append(entry)
    if without:
        return failed("missing", hosts=without, count=len(without), total=len(boundary))
    if unclear:
        return undetermined("cannot_tell", hosts=unclear, passing=with_ids)
    return passed("present", hosts=with_ids, total=len(boundary))
