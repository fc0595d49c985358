"""Điều 18 khoản 2 network rules on crafted network models and probe observations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agent.report import IdsSection, InterfaceAddress, NetworkInterface, NetworkSection
from policies import evaluate_fleet, evaluate_host
from policies.coverage import coverage
from policies.engine import summarize_agency
from policies.fleet import FleetContext, FleetHost
from policies.framework import load_framework
from policies.model import Finding
from policies.network_model import NetFlow, NetworkFacts, NetZone, ProbeObservation, zone_of
from policies.parameters import default_parameters
from tests.factories import NOW, make_report

ZONES = (
    NetZone("outside", "outside", ("203.0.113.0/24",)),
    NetZone("dmz", "dmz", ("10.0.1.0/24",)),
    NetZone("server", "server", ("10.0.2.0/24",)),
    NetZone("internal", "internal", ("10.0.3.0/24",)),
)
FLOWS = (
    NetFlow("outside", "dmz", "tcp", 443),
    NetFlow("dmz", "server", "tcp", 5432),
)
SRC = {"outside": "203.0.113.10", "dmz": "10.0.1.5", "server": "10.0.2.5", "internal": "10.0.3.5"}
TWO_FIREWALLS = ("203.0.113.1", "10.0.1.1")


def obs(
    src: str,
    dst: str,
    address: str,
    port: int,
    state: str = "filtered",
    path: tuple[str, ...] | None = TWO_FIREWALLS,
    hops: int | None = None,
) -> ProbeObservation:
    return ProbeObservation(
        src_zone=src,
        src_address=SRC[src],
        dst_zone=dst,
        dst_address=address,
        port=port,
        state=state,  # type: ignore[arg-type]
        observed_at=NOW - timedelta(hours=1),
        source_host=f"probe-{src}",
        hops=hops if hops is not None else (len(path) if path is not None else None),
        path=path,
    )


GOOD_OBSERVATIONS = (
    obs("outside", "dmz", "10.0.1.20", 443, "open", path=("203.0.113.1",)),
    obs("outside", "dmz", "10.0.1.20", 22),
    obs("outside", "server", "10.0.2.20", 22),
    obs("outside", "server", "10.0.2.20", 5432),
    obs("outside", "internal", "10.0.3.20", 445),
    obs("dmz", "server", "10.0.2.20", 5432, "open"),
    obs("dmz", "internal", "10.0.3.20", 22, "closed"),
)


def facts(
    zones: tuple[NetZone, ...] = ZONES,
    flows: tuple[NetFlow, ...] = FLOWS,
    observations: tuple[ProbeObservation, ...] = GOOD_OBSERVATIONS,
) -> NetworkFacts:
    return NetworkFacts(zones=zones, flows=flows, observations=observations, runs=3)


def host(i: int, addresses: list[str], level: int = 3, **sections: Any) -> FleetHost:
    interfaces = [
        NetworkInterface(
            name=f"eth{n}",
            addresses=[InterfaceAddress(family="ipv4", address=a, prefixlen=24)],
        )
        for n, a in enumerate(addresses)
    ]
    report = make_report(
        hostname=f"h-{i:02d}",
        machine_id=f"m{i}",
        network=NetworkSection(interfaces=interfaces),
        **sections,
    )
    return FleetHost(
        host_id=i,
        hostname=f"h-{i:02d}",
        role="server",
        enrolled_at=NOW - timedelta(days=30),
        last_seen_at=NOW - timedelta(hours=1),
        findings={f.check_id: f for f in evaluate_host(report, level, "server").findings},
        report=report,
    )


FIREWALL = host(1, ["10.0.1.1", "10.0.2.1", "10.0.3.1"])  # boundary host with Suricata
WEB = host(2, ["10.0.1.20"])


def ctx(network: NetworkFacts | None, hosts: list[FleetHost] | None = None, level: int = 3):
    return FleetContext(
        level=level,
        now=NOW,
        params=default_parameters(),
        hosts=hosts if hosts is not None else [FIREWALL, WEB],
        network=network,
    )


def rules(context: FleetContext) -> dict[str, Finding]:
    return {f.check_id: f for f in evaluate_fleet(context) if f.check_id.startswith("net_")}


def test_correct_four_zone_model_with_two_hops_passes():
    found = rules(ctx(facts()))
    assert {rid: f.status for rid, f in found.items()} == {
        "net_zone_model": "pass",
        "net_no_undeclared_flows": "pass",
        "net_dmz_services_declared": "pass",
        "net_filtering_hops": "pass",
        "net_boundary_ids": "pass",
    }
    assert "10.0.1.20 tcp/443" in found["net_dmz_services_declared"].evidence.vi
    assert "h-01 (dmz / server / internal)" in found["net_boundary_ids"].evidence.en
    verdicts = {
        v.requirement_id: v.status
        for a in summarize_agency([], 3, fleet_findings=evaluate_fleet(ctx(facts())))
        for v in a.requirements
    }
    assert verdicts["D18.2.L3.a"] == "pass"
    assert verdicts["D18.2.L3.b"] == "pass"
    assert verdicts["D18.2.L2"] == "not_applicable"


def test_flat_network_fails_the_zone_model_naming_what_is_missing():
    flat = facts(zones=(NetZone("lan", "internal", ("10.0.0.0/16",)),), flows=(), observations=())
    finding = rules(ctx(flat))["net_zone_model"]
    assert finding.status == "fail"
    assert "vùng ngoài, DMZ, máy chủ" in finding.evidence.vi
    assert "outside, DMZ, server" in finding.evidence.en
    assert "nội bộ" not in finding.evidence.vi.split(";")[0]


def test_no_network_model_is_unknown_for_every_rule():
    found = rules(ctx(None))
    assert {f.status for f in found.values()} == {"unknown"}
    assert found["net_zone_model"].evidence.en == (
        "The agency has not declared its network model (zones and address ranges)"
    )
    assert "chưa khai báo mô hình mạng" in found["net_zone_model"].evidence.vi


def test_zone_model_is_not_required_below_level_3():
    flat = facts(zones=(NetZone("lan", "internal", ("10.0.0.0/16",)),), observations=(), flows=())
    assert rules(ctx(flat, level=2))["net_zone_model"].status == "not_applicable"


def test_dmz_to_internal_ssh_open_fails_naming_the_flow():
    leaky = facts(observations=(*GOOD_OBSERVATIONS, obs("dmz", "internal", "10.0.3.7", 22, "open")))
    finding = rules(ctx(leaky))["net_no_undeclared_flows"]
    assert finding.status == "fail"
    assert "DMZ (10.0.1.5) → nội bộ 10.0.3.7 tcp/22" in finding.evidence.vi
    assert "DMZ (10.0.1.5) → internal 10.0.3.7 tcp/22" in finding.evidence.en
    assert finding.data["flows"][0]["dst_address"] == "10.0.3.7"
    assert finding.data["flows"][0]["source_host"] == "probe-dmz"
    # the declared dmz → server tcp/5432 flow, open, is not reported
    assert "5432" not in finding.evidence.en


def test_custom_zone_names_are_shown_with_their_kind():
    zones = (
        NetZone("internet", "outside", ("203.0.113.0/24",)),
        NetZone("web", "dmz", ("10.0.1.0/24",)),
        NetZone("srv", "server", ("10.0.2.0/24",)),
        NetZone("lan", "internal", ("10.0.3.0/24",)),
    )
    o = ProbeObservation(
        src_zone="internet",
        src_address="203.0.113.10",
        dst_zone="srv",
        dst_address="10.0.2.9",
        port=3389,
        state="open",
        observed_at=NOW,
        source_host="p",
    )
    finding = rules(ctx(facts(zones=zones, flows=(), observations=(o,))))["net_no_undeclared_flows"]
    assert finding.status == "fail"
    assert "vùng ngoài 'internet' (203.0.113.10) → máy chủ 'srv' 10.0.2.9 tcp/3389" in (
        finding.evidence.vi
    )


def test_undeclared_dmz_service_fails():
    extra = facts(
        observations=(*GOOD_OBSERVATIONS, obs("outside", "dmz", "10.0.1.20", 8080, "open"))
    )
    finding = rules(ctx(extra))["net_dmz_services_declared"]
    assert finding.status == "fail"
    assert "vùng ngoài (203.0.113.10) → DMZ 10.0.1.20 tcp/8080" in finding.evidence.vi
    assert "443" not in finding.evidence.en


def test_no_probe_results_are_unknown():
    found = rules(ctx(facts(observations=())))
    assert found["net_zone_model"].status == "pass"
    for rid in ("net_no_undeclared_flows", "net_dmz_services_declared", "net_filtering_hops"):
        assert found[rid].status == "unknown", rid
    assert "No probe results yet" in found["net_no_undeclared_flows"].evidence.en


def test_missing_traceroute_is_unknown():
    untraced = tuple(
        obs(o.src_zone, o.dst_zone, o.dst_address, o.port, o.state, path=None)
        for o in GOOD_OBSERVATIONS
    )
    finding = rules(ctx(facts(observations=untraced)))["net_filtering_hops"]
    assert finding.status == "unknown"
    assert "traceroute" in finding.evidence.vi


def test_one_filtering_hop_fails_level_3_but_passes_level_2():
    one_hop = facts(
        observations=(
            obs("outside", "internal", "10.0.3.20", 445, path=("203.0.113.1",)),
            obs("outside", "server", "10.0.2.20", 22),
        )
    )
    finding = rules(ctx(one_hop))["net_filtering_hops"]
    assert finding.status == "fail"
    assert "vùng ngoài (203.0.113.10) → nội bộ 10.0.3.20: 1 bộ định tuyến (203.0.113.1)" in (
        finding.evidence.vi
    )
    assert "10.0.2.20" not in finding.evidence.vi
    assert rules(ctx(one_hop, level=2))["net_filtering_hops"].status == "pass"


def test_level_2_may_model_never_fails_the_requirement():
    leaky = facts(
        observations=(obs("outside", "internal", "10.0.3.7", 3389, "open", path=("203.0.113.1",)),)
    )
    fleet = evaluate_fleet(ctx(leaky, level=2))
    assert {f.check_id: f.status for f in fleet}["net_no_undeclared_flows"] == "fail"
    verdicts = {
        v.requirement_id: v.status
        for a in summarize_agency([], 2, fleet_findings=fleet)
        for v in a.requirements
    }
    assert verdicts["D18.2.L2"] == "unknown"  # "có thể": a permitted model, never a failure
    assert verdicts["D18.2.L3.a"] == "not_applicable"


def test_boundary_host_without_ids_fails():
    bare = host(3, ["203.0.113.1", "10.0.1.1"], ids=IdsSection(products=[]))
    finding = rules(ctx(facts(), hosts=[bare, WEB]))["net_boundary_ids"]
    assert finding.status == "fail"
    assert "h-03 (outside / dmz)" in finding.evidence.vi


def test_no_agent_on_a_boundary_host_is_unknown():
    finding = rules(ctx(facts(), hosts=[WEB, host(4, ["10.0.3.40", "127.0.0.1"])]))[
        "net_boundary_ids"
    ]
    assert finding.status == "unknown"
    assert finding.evidence.en == (
        "IDS on the boundary cannot be observed: no agent on a firewall host; attest it"
    )


def test_boundary_host_with_unobserved_ids_is_unknown():
    unseen = host(5, ["10.0.2.1", "10.0.3.1"], ids=IdsSection(status="unknown", reason="denied"))
    assert rules(ctx(facts(), hosts=[unseen]))["net_boundary_ids"].status == "unknown"


def test_zone_of_is_longest_prefix_match():
    zones = [
        NetZone("wide", "internal", ("10.0.0.0/8",)),
        NetZone("narrow", "dmz", ("10.9.0.0/16",)),
    ]
    assert zone_of(zones, "10.9.1.1").name == "narrow"  # type: ignore[union-attr]
    assert zone_of(zones, "10.1.1.1").name == "wide"  # type: ignore[union-attr]
    assert zone_of(zones, "192.168.1.1") is None
    assert zone_of(zones, "not-an-ip") is None


def test_coverage_reports_the_network_rules():
    rows = {row.id: row for row in coverage(load_framework())}
    assert rows["D18.2.L3.a"].fleet_rules == [
        "net_zone_model",
        "net_no_undeclared_flows",
        "net_dmz_services_declared",
    ]
    assert rows["D18.2.L3.b"].fleet_rules == ["net_filtering_hops", "net_boundary_ids"]
    for rid in ("D18.2.L2", "D18.2.L3.a", "D18.2.L3.b"):
        assert rows[rid].mapped and rows[rid].verification == "network"
        assert "net_" in rows[rid].why.en
