"""Every endpoint against every role: who may call it, who is refused, and the audit trail.

The world: agencies A and B; in A an enrolled agent with a report, a waiver, an
attestation with evidence, an approved-software entry and an agentless target.
Callers: nobody, agent A, the bootstrap admin token, a province administrator,
a province reviewer, the administrator of agency A and the one of agency B.

Each endpoint states its rule (public, agent, read A, manage A, province
admin, province read, any user, self).  For every caller the request must be
refused (401 without identity, 403 with a wrong one) and leave the database
untouched, or be served; a served change by a person leaves an audit event
naming that person.  A route missing from ``ENDPOINTS`` fails the test, so a
new endpoint cannot ship without its rule.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from collector.models import AuditEvent
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS, ADMIN_TOKEN, Api, db_snapshot
from tests.factories import make_report

PASSWORD = "mật-khẩu-đủ-dài-2026"
_counter = itertools.count()


@pytest.fixture
def settings(collector_database_url: str) -> Settings:
    # Many logins from one test client: no login rate limit here (it has its own test).
    return Settings(
        database_url=collector_database_url, admin_token=ADMIN_TOKEN, login_rate_per_minute=0
    )


@dataclass
class World:
    api: Api
    a: int  # agency A id
    b: int
    agent_a: str  # agent credential in A
    host_a: int
    machine_a: str
    user_ids: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    actors: dict[str, str | None] = field(default_factory=dict)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.api.client.request(method, path, headers=ADMIN_HEADERS, **kwargs)
        assert r.status_code in (200, 201, 204), (method, path, r.text)
        return r.json() if r.status_code != 204 else None

    # fresh objects, one per call that consumes them
    def enrollment_token(self) -> str:
        return self.admin("POST", f"/api/v1/agencies/{self.a}/enrollment-tokens", json={})["token"]

    def waiver(self) -> int:
        return self.admin(
            "POST",
            f"/api/v1/agencies/{self.a}/waivers",
            json=waiver_body(self.host_a),
        )["id"]

    def attestation(self) -> int:
        return self.admin(
            "POST", f"/api/v1/agencies/{self.a}/attestations", json=attestation_body(self)
        )["id"]

    def software_entry(self) -> int:
        return self.admin(
            "POST",
            f"/api/v1/agencies/{self.a}/approved-software",
            json={"name": f"pkg-{next(_counter)}", "added_by": "Trưởng phòng"},
        )["id"]

    def enrollment_token_id(self) -> int:
        return self.admin(
            "POST", f"/api/v1/agencies/{self.a}/enrollment-tokens", json={"label": "x"}
        )["id"]


def waiver_body(host_id: int) -> dict[str, Any]:
    return {
        "check_id": "av_installed",
        "host_id": host_id,
        "justification": "Máy đo đạc chuyên dụng, nhà sản xuất không cho cài phần mềm diệt virus.",
        "author": "Giám đốc",
        "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }


def attestation_body(world: World) -> dict[str, Any]:
    return {
        "requirement_id": world.attestable,  # type: ignore[attr-defined]
        "statement": "Đã kiểm tra phòng máy chủ.",
        "attested_by": "Nguyễn Văn A, Trưởng phòng CNTT",
    }


CALLERS = (
    "anonymous",
    "agent_a",
    "admin_token",
    "province_admin",
    "reviewer",
    "agency_admin_a",
    "agency_admin_b",
)
PEOPLE = ("admin_token", "province_admin", "reviewer", "agency_admin_a", "agency_admin_b")

RULES: dict[str, set[str]] = {
    "public": set(CALLERS),
    "agent": {"agent_a"},
    "read_a": {"admin_token", "province_admin", "reviewer", "agency_admin_a"},
    "manage_a": {"admin_token", "province_admin", "agency_admin_a"},
    "province_admin": {"admin_token", "province_admin"},
    "province_read": {"admin_token", "province_admin", "reviewer"},
    "any_user": set(PEOPLE),
    "self_a": {"admin_token", "province_admin", "agency_admin_a"},  # acts on admin A's user
}


Request = tuple[str, dict[str, Any]]  # (path, extra kwargs for client.request)


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # as in the OpenAPI document
    rule: str
    build: Callable[[World], Request]
    ok: frozenset[int] = frozenset({200, 201, 204})
    audited: bool = False  # a served call by a person must add an audit event


def E(
    method: str,
    route: str,
    rule: str,
    build: Callable[[World], Request] | None = None,
    ok: tuple[int, ...] = (200, 201, 204),
    audited: bool | None = None,
) -> Endpoint:
    if build is None:

        def build(w: World, route: str = route) -> Request:
            return route.format(agency_id=w.a, host_id=w.host_a), {}

    if audited is None:
        audited = method != "GET" and rule not in ("public", "agent")
    return Endpoint(method, route, rule, build, frozenset(ok), audited)


def _report(w: World) -> Request:
    report = make_report(machine_id=w.machine_a)
    return "/api/v1/reports", {
        "content": report.model_dump_json(),
        "headers": {"Content-Type": "application/json"},
    }


def _probe_results(w: World) -> Request:
    now = datetime.now(UTC).isoformat()
    body = {
        "plan_id": str(uuid.uuid4()),
        "source_address": "10.0.0.5",
        "source_zone": "internal",
        "method": "connect",
        "started_at": now,
        "finished_at": now,
    }
    return "/api/v1/agent/probe-results", {"json": body}


def incident_body(w: World) -> dict[str, Any]:
    return {
        "category": "server_operation",
        "title": "Máy chủ thư điện tử ngừng hoạt động",
        "occurred_at": datetime.now(UTC).isoformat(),
        "reported_by": "Nguyễn Văn A",
        "host_id": w.host_a,
    }


def _incident(w: World) -> int:
    return int(w.admin("POST", f"/api/v1/agencies/{w.a}/incidents", json=incident_body(w))["id"])


ENDPOINTS: tuple[Endpoint, ...] = (
    E("GET", "/healthz", "public"),
    E(
        "POST",
        "/api/v1/enroll",
        "public",
        lambda w: (
            "/api/v1/enroll",
            {"json": {"token": w.enrollment_token(), "hostname": f"h{next(_counter)}"}},
        ),
    ),
    E(
        "POST",
        "/api/v1/auth/token",
        "public",
        lambda w: (
            "/api/v1/auth/token",
            {"json": {"username": "reviewer", "password": PASSWORD}},
        ),
        audited=False,
    ),
    E("POST", "/api/v1/reports", "agent", _report),
    # the handler answers: agent A is in no declared zone
    E("GET", "/api/v1/agent/probe-plan", "agent", ok=(409,)),
    # allowed callers reach the handler, which does not know this plan
    E("POST", "/api/v1/agent/probe-results", "agent", _probe_results, ok=(404,)),
    E("GET", "/api/v1/agent/credential", "agent"),
    E("POST", "/api/v1/agent/credential/rotate", "agent"),
    E("GET", "/api/v1/tls/ca.pem", "public", ok=(200, 404)),
    # agencies
    E("GET", "/api/v1/agencies", "any_user"),
    E(
        "POST",
        "/api/v1/agencies",
        "province_admin",
        lambda w: (
            "/api/v1/agencies",
            {"json": {"code": f"new-{next(_counter)}", "name": "UBND xã", "level": 2}},
        ),
    ),
    E("GET", "/api/v1/agencies/{agency_id}", "read_a"),
    E(
        "PATCH",
        "/api/v1/agencies/{agency_id}",
        "province_admin",
        lambda w: (f"/api/v1/agencies/{w.a}", {"json": {"name": f"Sở TTTT {next(_counter)}"}}),
    ),
    E("GET", "/api/v1/agencies/{agency_id}/enrollment-tokens", "read_a"),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/enrollment-tokens",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/enrollment-tokens", {"json": {"label": "đợt 2"}}),
    ),
    E(
        "DELETE",
        "/api/v1/agencies/{agency_id}/enrollment-tokens/{token_id}",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/enrollment-tokens/{w.enrollment_token_id()}", {}),
    ),
    E("GET", "/api/v1/agencies/{agency_id}/hosts", "read_a"),
    E("GET", "/api/v1/agencies/{agency_id}/compliance", "read_a"),
    E("GET", "/api/v1/agencies/{agency_id}/compliance/history", "read_a"),
    E("GET", "/api/v1/agencies/{agency_id}/fleet", "read_a"),
    E("GET", "/api/v1/agencies/{agency_id}/discovery", "read_a", ok=(200, 404)),
    E("GET", "/api/v1/province/compliance", "province_read"),
    # hosts
    E("GET", "/api/v1/hosts/{host_id}", "read_a"),
    E("GET", "/api/v1/hosts/{host_id}/software", "read_a"),
    E("GET", "/api/v1/hosts/{host_id}/software/changes", "read_a"),
    E("GET", "/api/v1/hosts/{host_id}/findings", "read_a"),
    E("GET", "/api/v1/hosts/{host_id}/compliance", "read_a"),
    E(
        "POST",
        "/api/v1/hosts/{host_id}/revoke",
        "manage_a",
        # a fresh host each time, so agent A keeps its credential
        lambda w: (f"/api/v1/hosts/{w.fresh_host()}/revoke", {}),  # type: ignore[attr-defined]
    ),
    # attestations
    E("GET", "/api/v1/agencies/{agency_id}/attestable-requirements", "read_a"),
    E("GET", "/api/v1/agencies/{agency_id}/attestations", "read_a"),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/attestations",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/attestations", {"json": attestation_body(w)}),
    ),
    E(
        "GET",
        "/api/v1/attestations/{attestation_id}",
        "read_a",
        lambda w: (f"/api/v1/attestations/{w.attestation_id}", {}),  # type: ignore[attr-defined]
    ),
    E(
        "DELETE",
        "/api/v1/attestations/{attestation_id}",
        "manage_a",
        lambda w: (f"/api/v1/attestations/{w.attestation()}", {}),
    ),
    E(
        "POST",
        "/api/v1/attestations/{attestation_id}/evidence",
        "manage_a",
        lambda w: (
            f"/api/v1/attestations/{w.attestation_id}/evidence",  # type: ignore[attr-defined]
            {"files": {"file": ("bien-ban.txt", "Biên bản kiểm tra".encode(), "text/plain")}},
        ),
    ),
    E(
        "GET",
        "/api/v1/attestations/{attestation_id}/evidence/{file_id}",
        "read_a",
        lambda w: (
            f"/api/v1/attestations/{w.attestation_id}/evidence/{w.evidence_id}",  # type: ignore[attr-defined]
            {},
        ),
    ),
    # waivers
    E("GET", "/api/v1/agencies/{agency_id}/waivers", "read_a"),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/waivers",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/waivers", {"json": waiver_body(w.host_a)}),
    ),
    E(
        "GET",
        "/api/v1/waivers/{waiver_id}",
        "read_a",
        lambda w: (f"/api/v1/waivers/{w.waiver_id}", {}),  # type: ignore[attr-defined]
    ),
    E(
        "DELETE",
        "/api/v1/waivers/{waiver_id}",
        "manage_a",
        lambda w: (f"/api/v1/waivers/{w.waiver()}", {}),
    ),
    # thresholds: the province's standard
    E("GET", "/api/v1/agencies/{agency_id}/parameters", "read_a"),
    E(
        "PUT",
        "/api/v1/agencies/{agency_id}/parameters",
        "province_admin",
        lambda w: (
            f"/api/v1/agencies/{w.a}/parameters",
            {"json": {"antivirus": {"max_signature_age_days": 3 + next(_counter) % 3}}},
        ),
    ),
    # software register
    E("GET", "/api/v1/agencies/{agency_id}/approved-software", "read_a"),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/approved-software",
        "manage_a",
        lambda w: (
            f"/api/v1/agencies/{w.a}/approved-software",
            {"json": {"name": f"libreoffice-{next(_counter)}", "added_by": "Trưởng phòng"}},
        ),
    ),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/approved-software/declare",
        "manage_a",
        lambda w: (
            f"/api/v1/agencies/{w.a}/approved-software/declare",
            {"json": {"declared_by": "Trưởng phòng"}},
        ),
        audited=False,  # idempotent: already declared in the world, nothing changes
    ),
    E(
        "DELETE",
        "/api/v1/approved-software/{entry_id}",
        "manage_a",
        lambda w: (f"/api/v1/approved-software/{w.software_entry()}", {}),
    ),
    # re-evaluation: one agency by its manager, all by the province
    E(
        "POST",
        "/api/v1/reevaluate",
        "manage_a",
        lambda w: ("/api/v1/reevaluate", {"params": {"agency_id": w.a}}),
    ),
    # network zones
    E("GET", "/api/v1/agencies/{agency_id}/network", "read_a"),
    E(
        "PUT",
        "/api/v1/agencies/{agency_id}/network",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/network", {"json": w.network_model}),  # type: ignore[attr-defined]
    ),
    E("GET", "/api/v1/agencies/{agency_id}/network/probe-runs", "read_a"),
    # agentless
    E(
        "GET",
        "/api/v1/agentless/targets",
        "any_user",
    ),
    E(
        "POST",
        "/api/v1/agentless/targets",
        "province_admin",
        lambda w: (
            "/api/v1/agentless/targets",
            {
                "json": {
                    "agency_id": w.a,
                    "address": "127.0.0.1",
                    "port": 9,
                    "username": "posture",
                    "key_path": "/nonexistent/key",
                }
            },
        ),
    ),
    E(
        "GET",
        "/api/v1/agentless/targets/{target_id}",
        "read_a",
        lambda w: (f"/api/v1/agentless/targets/{w.target_id}", {}),  # type: ignore[attr-defined]
    ),
    # port 9 on loopback is closed: allowed callers get the handler's 502
    E(
        "GET",
        "/api/v1/agentless/targets/{target_id}/host-key",
        "manage_a",
        lambda w: (f"/api/v1/agentless/targets/{w.target_id}/host-key", {}),  # type: ignore[attr-defined]
        ok=(502,),
        audited=False,
    ),
    E(
        "POST",
        "/api/v1/agentless/targets/{target_id}/trust",
        "manage_a",
        lambda w: (
            f"/api/v1/agentless/targets/{w.target_id}/trust",  # type: ignore[attr-defined]
            {"json": {"fingerprint": "SHA256:" + "A" * 43}},
        ),
        ok=(502,),
        audited=False,
    ),
    E(
        "POST",
        "/api/v1/agentless/targets/{target_id}/collect",
        "manage_a",
        lambda w: (f"/api/v1/agentless/targets/{w.target_id}/collect", {}),  # type: ignore[attr-defined]
        ok=(409,),  # not trusted yet: never connected to
        audited=False,
    ),
    # incident register
    E("GET", "/api/v1/agencies/{agency_id}/incidents", "read_a"),
    E(
        "POST",
        "/api/v1/agencies/{agency_id}/incidents",
        "manage_a",
        lambda w: (f"/api/v1/agencies/{w.a}/incidents", {"json": incident_body(w)}),
    ),
    E(
        "GET",
        "/api/v1/incidents/{incident_id}",
        "read_a",
        lambda w: (f"/api/v1/incidents/{_incident(w)}", {}),
    ),
    E(
        "PATCH",
        "/api/v1/incidents/{incident_id}",
        "manage_a",
        lambda w: (
            f"/api/v1/incidents/{_incident(w)}",
            {"json": {"handling": f"Khởi động lại dịch vụ, lần {next(_counter)}"}},
        ),
    ),
    E("GET", "/api/v1/province/incidents", "province_read"),
    # periodic reports and the incident document (collector/routes/report_exports.py)
    E(
        "GET",
        "/api/v1/agencies/{agency_id}/report",
        "read_a",
        lambda w: (
            f"/api/v1/agencies/{w.a}/report",
            {"params": {"period": "2026", "format": "csv"}},
        ),
    ),
    E(
        "GET",
        "/api/v1/province/report",
        "province_read",
        lambda w: ("/api/v1/province/report", {"params": {"period": "2026", "format": "csv"}}),
    ),
    E(
        "GET",
        "/api/v1/incidents/{incident_id}/report.pdf",
        "read_a",
        lambda w: (f"/api/v1/incidents/{_incident(w)}/report.pdf", {}),
    ),
    # users and audit
    E("GET", "/api/v1/users/me", "any_user"),
    E("GET", "/api/v1/users", "province_admin"),
    E(
        "POST",
        "/api/v1/users",
        "province_admin",
        lambda w: (
            "/api/v1/users",
            {"json": {"username": f"u{next(_counter)}", "role": "province_reviewer"}},
        ),
    ),
    E(
        "PATCH",
        "/api/v1/users/{user_id}",
        "province_admin",
        lambda w: (
            f"/api/v1/users/{w.user_ids['spare']}",
            {"json": {"display_name": f"Cán bộ {next(_counter)}"}},
        ),
    ),
    E(
        "POST",
        "/api/v1/users/{user_id}/tokens",
        "self_a",
        lambda w: (f"/api/v1/users/{w.user_ids['agency_admin_a']}/tokens", {"json": {}}),
    ),
    E("GET", "/api/v1/audit", "any_user"),
)


def _fresh_host(w: World) -> int:
    r = w.api.client.post(
        "/api/v1/enroll",
        json={"token": w.enrollment_token(), "hostname": f"spare-{next(_counter)}"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["host_id"])


@pytest.fixture
def world(api: Api) -> World:
    a = api.create_agency(code="so-tttt", level=3)["id"]
    b = api.create_agency(code="ubnd-bc", level=2, name="UBND Bến Cát")["id"]
    agent_a = api.enroll(api.create_token(a), machine_id="m-a", hostname="a-01")
    agent_b = api.enroll(api.create_token(b), machine_id="m-b", hostname="b-01")
    assert api.post_report(agent_a, make_report(machine_id="m-a")).status_code == 201
    assert api.post_report(agent_b, make_report(machine_id="m-b")).status_code == 201
    w = World(
        api=api, a=a, b=b, agent_a=agent_a.credential, host_a=agent_a.host_id, machine_a="m-a"
    )
    w.fresh_host = lambda: _fresh_host(w)  # type: ignore[attr-defined]

    for name, role, agency in (
        ("province_admin", "province_admin", None),
        ("reviewer", "province_reviewer", None),
        ("agency_admin_a", "agency_admin", a),
        ("agency_admin_b", "agency_admin", b),
        ("spare", "province_reviewer", None),
    ):
        body = {
            "username": name.replace("_", "-") if name != "reviewer" else name,
            "role": role,
            "agency_id": agency,
            "password": PASSWORD,
        }
        w.user_ids[name] = w.admin("POST", "/api/v1/users", json=body)["id"]
        if name == "spare":
            continue
        r = api.client.post(
            "/api/v1/auth/token", json={"username": body["username"], "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        w.headers[name] = {"Authorization": f"Bearer {r.json()['token']}"}
        w.actors[name] = f"user:{body['username']}"
        # first use records last_used_at; do it now, not inside a refused call
        assert api.client.get("/api/v1/users/me", headers=w.headers[name]).status_code == 200
    w.headers["admin_token"] = dict(ADMIN_HEADERS)
    w.actors["admin_token"] = "admin-token"
    w.headers["agent_a"] = {"Authorization": f"Bearer {agent_a.credential}"}
    w.actors["agent_a"] = None
    w.headers["anonymous"] = {}
    w.actors["anonymous"] = None

    w.attestable = w.admin(  # type: ignore[attr-defined]
        "GET", f"/api/v1/agencies/{a}/attestable-requirements"
    )[0]["id"]
    w.attestation_id = w.attestation()  # type: ignore[attr-defined]
    ev = api.client.post(
        f"/api/v1/attestations/{w.attestation_id}/evidence",  # type: ignore[attr-defined]
        files={"file": ("a.txt", b"evidence", "text/plain")},
        headers=ADMIN_HEADERS,
    )
    assert ev.status_code == 201, ev.text
    w.evidence_id = ev.json()["id"]  # type: ignore[attr-defined]
    w.waiver_id = w.waiver()  # type: ignore[attr-defined]
    w.software_entry()  # declares the register
    w.network_model = {  # type: ignore[attr-defined]
        k: v
        for k, v in w.admin("GET", f"/api/v1/agencies/{a}/network").items()
        if k in ("zones", "flows")
    }
    w.target_id = w.admin(  # type: ignore[attr-defined]
        "POST",
        "/api/v1/agentless/targets",
        json={
            "agency_id": a,
            "address": "127.0.0.1",
            "port": 9,
            "username": "posture",
            "key_path": "/nonexistent/key",
        },
    )["id"]
    return w


def test_every_route_has_a_rule(app) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    listed = {(e.method, e.route) for e in ENDPOINTS}
    assert documented - listed == set(), "endpoints without a role rule"
    assert listed - documented == set(), "rules for endpoints that do not exist"


def _audit_count(api: Api) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def _last_actors(api: Api, since: int) -> list[str]:
    with api.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.actor).order_by(AuditEvent.id)).all()
    return [r[0] for r in rows[since:]]


def test_every_endpoint_against_every_role(world: World) -> None:
    api = world.api
    failures: list[str] = []
    for endpoint, caller in itertools.product(ENDPOINTS, CALLERS):
        allowed = caller in RULES[endpoint.rule]
        path, kwargs = endpoint.build(world)
        headers = {**kwargs.pop("headers", {}), **world.headers[caller]}
        before_audit = _audit_count(api)
        before = None if allowed else db_snapshot(api.engine)
        r = api.client.request(endpoint.method, path, headers=headers, **kwargs)
        where = f"{endpoint.method} {path} as {caller}: {r.status_code} {r.text[:200]}"
        if not allowed:
            expected = 401 if caller == "anonymous" else 403
            if r.status_code != expected:
                failures.append(f"expected {expected}: {where}")
            elif db_snapshot(api.engine) != before:
                failures.append(f"refused call changed the database: {where}")
            continue
        if r.status_code not in endpoint.ok:
            failures.append(f"expected one of {sorted(endpoint.ok)}: {where}")
            continue
        if endpoint.audited and world.actors[caller] is not None:
            actors = _last_actors(api, before_audit)
            if world.actors[caller] not in actors:
                failures.append(f"no audit event by {world.actors[caller]}: {where}")
    assert failures == []


def test_agency_admin_sees_only_their_agency(world: World) -> None:
    client = world.api.client
    r = client.get("/api/v1/agencies", headers=world.headers["agency_admin_a"])
    assert [x["id"] for x in r.json()] == [world.a]
    r = client.get("/api/v1/agencies", headers=world.headers["reviewer"])
    assert {x["id"] for x in r.json()} >= {world.a, world.b}
    # the audit log of an agency admin is that of their agency only
    r = client.get("/api/v1/audit", headers=world.headers["agency_admin_a"])
    assert r.status_code == 200 and r.json()
    assert {e["agency_id"] for e in r.json()} == {world.a}
    r = client.get(
        "/api/v1/audit", params={"agency_id": world.b}, headers=world.headers["agency_admin_a"]
    )
    assert r.status_code == 403
    r = client.get("/api/v1/agentless/targets", headers=world.headers["agency_admin_b"])
    assert r.json() == []


def test_audit_event_records_who_what_and_where(world: World) -> None:
    client = world.api.client
    r = client.post(
        f"/api/v1/agencies/{world.a}/waivers",
        json=waiver_body(world.host_a),
        headers=world.headers["agency_admin_a"],
    )
    assert r.status_code == 201
    waiver_id = r.json()["id"]
    events = client.get(
        "/api/v1/audit", params={"action": "waiver."}, headers=world.headers["reviewer"]
    ).json()
    latest = events[0]
    assert latest["action"] == "waiver.create"
    assert latest["actor"] == "user:agency-admin-a"
    assert latest["actor_role"] == "agency_admin"
    assert latest["user_id"] == world.user_ids["agency_admin_a"]
    assert latest["agency_id"] == world.a
    assert latest["target"] == f"waiver:{waiver_id}"
    assert latest["detail"]["check_id"] == "av_installed"
    assert latest["source"] == "testclient"


def test_refused_login_is_audited_and_does_not_reveal_the_user(world: World) -> None:
    client = world.api.client
    for username in ("reviewer", "no-such-user"):
        r = client.post("/api/v1/auth/token", json={"username": username, "password": "sai"})
        assert r.status_code == 401
        assert r.json()["detail"] == "wrong username or password"
    events = client.get(
        "/api/v1/audit", params={"action": "auth.login_failed"}, headers=ADMIN_HEADERS
    ).json()
    assert {e["actor"] for e in events} >= {"login:reviewer", "login:no-such-user"}


def test_disabling_a_user_revokes_their_tokens(world: World) -> None:
    client = world.api.client
    headers = world.headers["agency_admin_b"]
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    world.admin(
        "PATCH", f"/api/v1/users/{world.user_ids['agency_admin_b']}", json={"disabled": True}
    )
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "agency-admin-b", "password": PASSWORD})
    assert r.status_code == 401


def test_user_rules(world: World) -> None:
    create = world.api.client.post
    for body, fragment in (
        ({"username": "x1", "role": "agency_admin"}, "needs an agency_id"),
        ({"username": "x2", "role": "province_reviewer", "agency_id": world.a}, "province"),
        ({"username": "x3", "role": "root"}, "unknown role"),
        ({"username": "x4", "role": "agency_admin", "agency_id": 999}, "not found"),
    ):
        r = create("/api/v1/users", json=body, headers=ADMIN_HEADERS)
        assert r.status_code == 422, body
        assert fragment in r.json()["detail"]
    r = create(
        "/api/v1/users",
        json={"username": "x5", "role": "province_reviewer", "password": "short"},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 422
    r = create(
        "/api/v1/users",
        json={"username": "reviewer", "role": "province_reviewer"},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 409
