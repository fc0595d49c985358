"""Network model, probe plans and probe results through the collector API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.netprobe.plan import ProbePlan, ProbeResults, TargetResult
from agent.report import IdsSection, InterfaceAddress, NetworkInterface, NetworkSection
from tests.collector.conftest import ADMIN_HEADERS, Agent, Api
from tests.factories import make_report

MODEL: dict[str, Any] = {
    "zones": [
        {"name": "outside", "kind": "outside", "cidrs": ["203.0.113.0/24"]},
        {
            "name": "dmz",
            "kind": "dmz",
            "cidrs": ["10.20.1.0/24"],
            "probe_addresses": ["10.20.1.254"],
        },
        {"name": "server", "kind": "server", "cidrs": ["10.20.2.0/24"]},
        {"name": "internal", "kind": "internal", "cidrs": ["10.20.3.0/24", "10.20.4.0/24"]},
    ],
    "flows": [
        {
            "src_zone": "outside",
            "dst_zone": "dmz",
            "protocol": "tcp",
            "port": 443,
            "note": "Cổng TTĐT",
        },
        {"src_zone": "dmz", "dst_zone": "server", "protocol": "tcp", "port": 8443},
        {"src_zone": "internal", "dst_zone": "server", "protocol": "udp", "port": 514},
    ],
}


def network(*addresses: str) -> NetworkSection:
    return NetworkSection(
        interfaces=[
            NetworkInterface(
                name="lo", addresses=[InterfaceAddress(family="ipv4", address="127.0.0.1")]
            ),
            *(
                NetworkInterface(
                    name=f"eth{i}",
                    addresses=[InterfaceAddress(family="ipv4", address=a, prefixlen=24)],
                )
                for i, a in enumerate(addresses)
            ),
        ]
    )


def put_model(api: Api, agency_id: int, model: dict[str, Any] = MODEL):
    return api.client.put(
        f"/api/v1/agencies/{agency_id}/network", json=model, headers=ADMIN_HEADERS
    )


class Site:
    """A level-3 agency with agents in the outside zone, DMZ, server and internal zones."""

    def __init__(self, api: Api, level: int = 3) -> None:
        self.api = api
        self.agency = api.create_agency(level=level)
        self.token = api.create_token(self.agency["id"])
        self.agents: dict[str, Agent] = {}

    def add(self, name: str, *addresses: str, **sections: Any) -> Agent:
        agent = self.api.enroll(self.token, machine_id=f"m-{name}", hostname=name, role="server")
        report = make_report(
            now=datetime.now(UTC),
            hostname=name,
            machine_id=f"m-{name}",
            role="server",
            network=network(*addresses),
            **sections,
        )
        r = self.api.post_report(agent, report)
        assert r.status_code == 201, r.text
        self.agents[name] = agent
        return agent

    def plan(self, name: str) -> ProbePlan:
        r = self.api.client.get("/api/v1/agent/probe-plan", headers=self.agents[name].headers)
        assert r.status_code == 200, r.text
        return ProbePlan.model_validate(r.json())

    def post(self, name: str, results: ProbeResults):
        return self.api.client.post(
            "/api/v1/agent/probe-results",
            content=results.model_dump_json(),
            headers={"Content-Type": "application/json", **self.agents[name].headers},
        )


@pytest.fixture
def site(api: Api) -> Site:
    s = Site(api)
    assert put_model(api, s.agency["id"]).status_code == 200
    s.add("probe-out", "203.0.113.10")
    s.add("web", "10.20.1.20")
    s.add("db", "10.20.2.30")
    s.add("pc", "10.20.3.40")
    s.add("fw", "203.0.113.1", "10.20.1.1", "10.20.2.1", "10.20.3.1")  # boundary host, Suricata
    return s


def results_for(
    plan: ProbePlan,
    source_address: str,
    states: dict[tuple[str, int], str] | None = None,
    path: list[str] | None = None,
    extra: list[TargetResult] | None = None,
) -> ProbeResults:
    """Every planned port filtered, except ``states``; the same path to every target."""
    states = states or {}
    now = datetime.now(UTC)
    targets = [
        TargetResult.model_validate(
            {
                "address": t.address,
                "zone": t.zone,
                "ports": [
                    {"port": p, "state": states.get((t.address, p), "filtered")} for p in t.ports
                ],
                "path": path,
                "hops": len(path) if path is not None else None,
            }
        )
        for t in plan.targets
    ]
    return ProbeResults(
        plan_id=plan.plan_id,
        source_address=source_address,
        source_zone=plan.source_zone,
        method="connect",
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
        results=targets + (extra or []),
    )


# --- the model ----------------------------------------------------------------------


def test_model_put_and_get_round_trip(api: Api):
    agency = api.create_agency()
    r = api.client.get(f"/api/v1/agencies/{agency['id']}/network", headers=ADMIN_HEADERS)
    assert r.status_code == 200 and r.json()["declared"] is False and r.json()["zones"] == []
    r = put_model(api, agency["id"])
    assert r.status_code == 200, r.text
    r = api.client.get(f"/api/v1/agencies/{agency['id']}/network", headers=ADMIN_HEADERS)
    body = r.json()
    assert body["declared"] is True
    assert [z["name"] for z in body["zones"]] == ["outside", "dmz", "server", "internal"]
    assert body["zones"][1]["probe_addresses"] == ["10.20.1.254"]
    assert body["flows"][0] == {
        "src_zone": "outside",
        "dst_zone": "dmz",
        "protocol": "tcp",
        "port": 443,
        "note": "Cổng TTĐT",
    }
    # replaced as a whole
    r = put_model(api, agency["id"], {"zones": [MODEL["zones"][3]], "flows": []})
    assert r.status_code == 200
    assert [z["name"] for z in r.json()["zones"]] == ["internal"] and r.json()["flows"] == []


def test_model_requires_admin(api: Api):
    agency = api.create_agency()
    assert api.client.get(f"/api/v1/agencies/{agency['id']}/network").status_code == 401
    assert api.client.put(f"/api/v1/agencies/{agency['id']}/network", json=MODEL).status_code == 401


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda m: m["zones"][2]["cidrs"].append("10.20.1.128/25"),
            "overlap",
        ),
        (
            lambda m: m["flows"].append({"src_zone": "dmz", "dst_zone": "lan", "port": 22}),
            "unknown zone 'lan'",
        ),
        (lambda m: m["flows"].append({"src_zone": "dmz", "dst_zone": "server", "port": 0}), "1"),
        (
            lambda m: m["flows"].append({"src_zone": "dmz", "dst_zone": "server", "port": 70000}),
            "65535",
        ),
        (lambda m: m["zones"][0]["cidrs"].append("10.300.0.0/16"), "not a valid CIDR"),
        (lambda m: m["zones"][0].update(kind="wan"), "kind"),
        (lambda m: m["zones"].append(dict(m["zones"][0], cidrs=[])), "duplicate zone names"),
        (lambda m: m["zones"][1]["probe_addresses"].append("10.20.2.9"), "not inside"),
    ],
)
def test_invalid_models_are_refused_with_422(api: Api, change, message):
    agency = api.create_agency()
    assert put_model(api, agency["id"]).status_code == 200
    before = api.client.get(f"/api/v1/agencies/{agency['id']}/network", headers=ADMIN_HEADERS)
    model = {
        "zones": [dict(z, cidrs=list(z["cidrs"])) for z in MODEL["zones"]],
        "flows": [dict(f) for f in MODEL["flows"]],
    }
    model["zones"][1]["probe_addresses"] = list(MODEL["zones"][1]["probe_addresses"])
    change(model)
    r = put_model(api, agency["id"], model)
    assert r.status_code == 422, r.text
    assert message in r.text
    after = api.client.get(f"/api/v1/agencies/{agency['id']}/network", headers=ADMIN_HEADERS)
    assert after.json() == before.json()  # nothing changed


# --- plans --------------------------------------------------------------------------


def test_plan_targets_other_zones_with_flow_and_default_ports(site: Site):
    plan = site.plan("probe-out")
    assert plan.source_zone == "outside"
    assert plan.agency_id == site.agency["id"]
    by_address = {t.address: t for t in plan.targets}
    # hosts in other zones (the boundary host in each of them) plus the declared probe address
    assert set(by_address) == {
        "10.20.1.20",
        "10.20.1.1",
        "10.20.1.254",
        "10.20.2.30",
        "10.20.2.1",
        "10.20.3.40",
        "10.20.3.1",
    }
    assert all(t.zone != "outside" for t in plan.targets)
    assert by_address["10.20.1.254"].host_id is None
    assert by_address["10.20.1.20"].host_id == site.agents["web"].host_id
    defaults = {22, 23, 80, 443, 445, 3389, 5432, 3306}
    assert set(by_address["10.20.2.30"].ports) == defaults | {8443}  # declared dmz → server
    assert set(by_address["10.20.1.20"].ports) == defaults
    assert 514 not in by_address["10.20.2.30"].ports  # UDP flows are not probed over TCP
    assert sorted(plan.allowed_networks) == sorted(
        ["203.0.113.0/24", "10.20.1.0/24", "10.20.2.0/24", "10.20.3.0/24", "10.20.4.0/24"]
    )
    assert plan.traceroute is True and plan.rate_per_second == 200
    assert all(plan.in_scope(t.address) for t in plan.targets)


def test_plan_rate_and_ports_follow_agency_parameters(site: Site):
    r = site.api.client.put(
        f"/api/v1/agencies/{site.agency['id']}/parameters",
        json={"network": {"probe_rate_per_second": 50, "probe_ports": [22]}},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200, r.text
    plan = site.plan("web")
    assert plan.rate_per_second == 50
    assert {t.address: t.ports for t in plan.targets}["10.20.2.30"] == [22, 8443]


def test_agent_outside_every_zone_gets_409(site: Site):
    site.add("stray", "192.168.50.5")
    r = site.api.client.get("/api/v1/agent/probe-plan", headers=site.agents["stray"].headers)
    assert r.status_code == 409
    assert r.json()["detail"] == "host is not in any declared zone"
    r = site.api.client.get("/api/v1/agent/probe-plan", headers=site.agents["fw"].headers)
    assert r.status_code == 409 and "boundary" in r.json()["detail"]


def test_plan_requires_an_agent_credential(site: Site):
    assert site.api.client.get("/api/v1/agent/probe-plan").status_code == 401
    r = site.api.client.get("/api/v1/agent/probe-plan", headers=ADMIN_HEADERS)
    assert r.status_code == 403
    assert "for enrolled agents" in r.json()["detail"]


# --- results ------------------------------------------------------------------------


def test_results_for_unknown_plan_are_404(site: Site):
    plan = site.plan("probe-out")
    results = results_for(plan, "203.0.113.10").model_copy(update={"plan_id": uuid.uuid4()})
    assert site.post("probe-out", results).status_code == 404


def test_results_for_another_hosts_plan_are_403(site: Site):
    plan = site.plan("probe-out")
    assert site.post("web", results_for(plan, "10.20.1.20")).status_code == 403


def test_results_are_kept_once_and_out_of_scope_targets_ignored(site: Site):
    plan = site.plan("probe-out")
    stray = TargetResult.model_validate(
        {"address": "8.8.8.8", "zone": "dmz", "ports": [{"port": 53, "state": "open"}]}
    )
    results = results_for(
        plan, "203.0.113.10", {("10.20.1.20", 443): "open"}, path=["203.0.113.1"], extra=[stray]
    )
    r = site.post("probe-out", results)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["targets"] == len(plan.targets)
    assert any("8.8.8.8" in item for item in body["ignored"])

    again = site.post("probe-out", results)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    runs = site.api.client.get(
        f"/api/v1/agencies/{site.agency['id']}/network/probe-runs", headers=ADMIN_HEADERS
    ).json()
    received = [run for run in runs if run["status"] == "received"]
    assert len(received) == 1
    run = received[0]
    assert run["plan_id"] == str(plan.plan_id) and run["source_zone"] == "outside"
    assert run["host_id"] == site.agents["probe-out"].host_id
    assert run["open_ports"] == 1 and run["method"] == "connect"
    assert run["started_at"] and run["finished_at"] and run["received_at"]
    kept = {t["address"] for t in run["results"]["results"]}
    assert "8.8.8.8" not in kept
    assert any("8.8.8.8" in note for note in run["results"]["notes"])


def test_results_that_end_before_they_start_are_refused(site: Site):
    plan = site.plan("probe-out")
    results = results_for(plan, "203.0.113.10")
    results = results.model_copy(update={"finished_at": results.started_at - timedelta(seconds=1)})
    assert site.post("probe-out", results).status_code == 422


# --- verdicts -----------------------------------------------------------------------


def requirement(api: Api, agency_id: int, rid: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/agencies/{agency_id}/compliance", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return next(
        req
        for article in r.json()
        for req in article["requirements"]
        if req["requirement_id"] == rid
    )


def test_compliance_shows_network_verdicts_from_posted_results(site: Site):
    agency_id = site.agency["id"]
    before = requirement(site.api, agency_id, "D18.2.L3.a")
    assert before["status"] == "unknown"
    assert "net_zone_model" in before["check_ids"]

    # outside: only the published DMZ service answers, over two firewalls
    out_plan = site.plan("probe-out")
    two_hops = ["203.0.113.1", "10.20.1.1"]
    r = site.post(
        "probe-out", results_for(out_plan, "203.0.113.10", {("10.20.1.20", 443): "open"}, two_hops)
    )
    assert r.status_code == 201
    # DMZ: only the declared flow to the database server
    dmz_plan = site.plan("web")
    r = site.post("web", results_for(dmz_plan, "10.20.1.20", {("10.20.2.30", 8443): "open"}))
    assert r.status_code == 201

    assert requirement(site.api, agency_id, "D18.2.L3.a")["status"] == "pass"
    assert requirement(site.api, agency_id, "D18.2.L3.b")["status"] == "pass"

    # a new DMZ run finds SSH open on an internal workstation
    dmz_plan = site.plan("web")
    r = site.post(
        "web",
        results_for(
            dmz_plan, "10.20.1.20", {("10.20.2.30", 8443): "open", ("10.20.3.40", 22): "open"}
        ),
    )
    assert r.status_code == 201
    verdict = requirement(site.api, agency_id, "D18.2.L3.a")
    assert verdict["status"] == "fail"
    assert any(
        "DMZ (10.20.1.20) → nội bộ 10.20.3.40 tcp/22" in e["vi"] for e in verdict["evidence"]
    )


def test_one_firewall_and_no_boundary_ids_fail_d18_2_l3_b(api: Api):
    s = Site(api)
    assert put_model(api, s.agency["id"]).status_code == 200
    s.add("probe-out", "203.0.113.10")
    s.add("pc", "10.20.3.40")
    s.add("fw", "203.0.113.1", "10.20.3.1", ids=IdsSection(products=[]))
    r = s.post("probe-out", results_for(s.plan("probe-out"), "203.0.113.10", path=["203.0.113.1"]))
    assert r.status_code == 201
    verdict = requirement(api, s.agency["id"], "D18.2.L3.b")
    assert verdict["status"] == "fail"
    evidence = " | ".join(e["en"] for e in verdict["evidence"])
    assert "outside (203.0.113.10) → internal 10.20.3.40: 1 router(s) (203.0.113.1)" in evidence
    assert "fw (outside / internal)" in evidence
