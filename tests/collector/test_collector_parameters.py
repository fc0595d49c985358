"""Thresholds as data: defaults ← province file ← agency overrides, and their use at ingest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from collector.models import Agency
from collector.parameters import InvalidParameters, effective_parameters, validate_overrides
from collector.settings import Settings
from policies.parameters import default_parameters
from tests.collector.conftest import ADMIN_HEADERS, Api, make_report


def params_url(agency_id: int) -> str:
    return f"/api/v1/agencies/{agency_id}/parameters"


def province_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "binh-duong.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def signature_finding(api: Api, host_id: int) -> dict:
    r = api.client.get(f"/api/v1/hosts/{host_id}/findings", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return next(f for f in r.json() if f["check_id"] == "av_signatures_fresh")


# --- unit: the three layers --------------------------------------------------


def test_effective_parameters_layers(tmp_path: Path) -> None:
    path = province_file(
        tmp_path,
        "antivirus:\n  max_signature_age_days: 3\nbackup:\n  max_age_days: 5\n",
    )
    settings = Settings(parameters_file=path)
    agency = Agency(code="x", name="X", level=2, parameters={"backup": {"max_age_days": 2}})
    params = effective_parameters(settings, agency)
    assert params["antivirus"]["max_signature_age_days"] == 3  # province
    assert params["backup"]["max_age_days"] == 2  # agency over province
    assert params["patches"] == default_parameters()["patches"]  # default
    assert default_parameters()["antivirus"]["max_signature_age_days"] == 7  # not mutated
    assert effective_parameters(Settings(), Agency(code="y", name="Y", level=1)) == (
        default_parameters()
    )


def test_province_file_is_validated(tmp_path: Path) -> None:
    bad = province_file(tmp_path, "antivirus:\n  max_signature_age_dayz: 3\n")
    with pytest.raises(InvalidParameters, match="max_signature_age_dayz"):
        effective_parameters(Settings(parameters_file=bad), Agency(code="x", name="X", level=1))
    with pytest.raises(InvalidParameters, match=r"missing\.yaml"):
        effective_parameters(
            Settings(parameters_file=tmp_path / "missing.yaml"),
            Agency(code="x", name="X", level=1),
        )


def test_province_file_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    path = province_file(tmp_path, "fleet:\n  max_silence_hours: 24\n")
    monkeypatch.setenv("POSTURE_PARAMETERS_FILE", str(path))
    settings = Settings()
    assert settings.parameters_file == path
    agency = Agency(code="x", name="X", level=1)
    assert effective_parameters(settings, agency)["fleet"]["max_silence_hours"] == 24


def test_validate_overrides() -> None:
    assert validate_overrides({"antivirus": {"max_signature_age_days": 1}}) == {
        "antivirus": {"max_signature_age_days": 1}
    }
    assert validate_overrides({"auth": {"allowed_admins": ["it-admin"]}, "backup": {}}) == {
        "auth": {"allowed_admins": ["it-admin"]}
    }
    for bad in (
        {"antivirus": {"nope": 1}},
        {"nope": {"max_age_days": 1}},
        {"antivirus": {"max_signature_age_days": "7"}},
        {"antivirus": {"max_signature_age_days": True}},
        {"antivirus": {"max_signature_age_days": -1}},
        {"auth": {"allowed_admins": "it-admin"}},
        {"antivirus": 7},
    ):
        with pytest.raises(InvalidParameters):
            validate_overrides(bad)


def test_stale_agency_override_is_skipped_not_fatal() -> None:
    agency = Agency(code="x", name="X", level=1, parameters={"gone": {"key": 1}})
    assert effective_parameters(Settings(), agency) == default_parameters()


# --- API ---------------------------------------------------------------------


def test_get_defaults_then_put_overrides(api: Api) -> None:
    agency = api.create_agency()
    r = api.client.get(params_url(agency["id"]), headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["overrides"] == {} and body["province_file"] is None
    assert body["effective"] == default_parameters()

    override = {"antivirus": {"max_signature_age_days": 2}, "auth": {"allowed_admins": ["qt"]}}
    r = api.client.put(params_url(agency["id"]), json=override, headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["overrides"] == override
    assert r.json()["effective"]["antivirus"]["max_signature_age_days"] == 2
    assert r.json()["effective"]["antivirus"]["max_scan_age_days"] == 7

    again = api.client.get(params_url(agency["id"]), headers=ADMIN_HEADERS).json()
    assert again["overrides"] == override
    assert again["effective"]["auth"]["allowed_admins"] == ["qt"]

    cleared = api.client.put(params_url(agency["id"]), json={}, headers=ADMIN_HEADERS).json()
    assert cleared["overrides"] == {} and cleared["effective"] == default_parameters()


@pytest.mark.parametrize(
    "body",
    [
        {"antivirus": {"max_signature_age_dayz": 2}},
        {"antivirrus": {"max_signature_age_days": 2}},
        {"antivirus": {"max_signature_age_days": "two"}},
        {"antivirus": ["max_signature_age_days"]},
    ],
)
def test_put_refuses_unknown_or_mistyped_parameters(api: Api, body: dict) -> None:
    agency = api.create_agency()
    ok = {"backup": {"max_age_days": 3}}
    assert api.client.put(params_url(agency["id"]), json=ok, headers=ADMIN_HEADERS).is_success
    before = api.snapshot()
    r = api.client.put(params_url(agency["id"]), json=body, headers=ADMIN_HEADERS)
    assert r.status_code == 422, r.text
    assert api.snapshot() == before
    assert api.client.get(params_url(agency["id"]), headers=ADMIN_HEADERS).json()["overrides"] == ok


def test_parameters_api_needs_admin_and_an_agency(api: Api) -> None:
    agency = api.create_agency()
    assert api.client.get(params_url(agency["id"])).status_code == 401
    assert api.client.put(params_url(agency["id"]), json={}).status_code == 401
    assert api.client.get(params_url(9999), headers=ADMIN_HEADERS).status_code == 404


def test_province_file_shows_in_the_api(make_api, tmp_path: Path, monkeypatch) -> None:
    path = province_file(tmp_path, "antivirus:\n  max_signature_age_days: 3\n")
    monkeypatch.setenv("POSTURE_PARAMETERS_FILE", str(path))
    api = make_api(parameters_file=path)
    agency = api.create_agency()
    body = api.client.get(params_url(agency["id"]), headers=ADMIN_HEADERS).json()
    assert body["province_file"] == str(path)
    assert body["effective"]["antivirus"]["max_signature_age_days"] == 3
    r = api.client.put(
        params_url(agency["id"]),
        json={"antivirus": {"max_signature_age_days": 1}},
        headers=ADMIN_HEADERS,
    )
    assert r.json()["effective"]["antivirus"]["max_signature_age_days"] == 1


# --- ingest uses the agency's values ----------------------------------------


def test_stricter_agency_fails_the_same_report_that_passes_elsewhere(api: Api) -> None:
    strict = api.create_agency(code="so-tttt", level=2)
    lenient = api.create_agency(code="ubnd-thu-dau-mot", level=2, name="UBND TP Thủ Dầu Một")
    r = api.client.put(
        params_url(strict["id"]),
        json={"antivirus": {"max_signature_age_days": 0.5}},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200, r.text
    a = api.enroll(api.create_token(strict["id"]), machine_id="m-strict")
    b = api.enroll(api.create_token(lenient["id"]), machine_id="m-lenient")

    # the same facts: signatures updated one day ago
    for agent in (a, b):
        report = make_report(machine_id=agent.machine_id)
        assert api.post_report(agent, report).status_code == 201

    strict_f = signature_finding(api, a.host_id)
    lenient_f = signature_finding(api, b.host_id)
    assert strict_f["status"] == "fail" and strict_f["data"]["max_days"] == 0.5
    assert lenient_f["status"] == "pass" and lenient_f["data"]["max_days"] == 7


def test_province_file_applies_at_ingest(make_api, tmp_path: Path, monkeypatch) -> None:
    path = province_file(tmp_path, "antivirus:\n  max_signature_age_days: 0.5\n")
    # the ingest route does not hand its settings down yet: the environment is read
    monkeypatch.setenv("POSTURE_PARAMETERS_FILE", str(path))
    api = make_api(parameters_file=path)
    strict = api.create_agency(code="so-tttt", level=2)
    relaxed = api.create_agency(code="so-gd", level=2, name="Sở GD&ĐT")
    api.client.put(
        params_url(relaxed["id"]),
        json={"antivirus": {"max_signature_age_days": 7}},
        headers=ADMIN_HEADERS,
    )
    a = api.enroll(api.create_token(strict["id"]), machine_id="m-1")
    b = api.enroll(api.create_token(relaxed["id"]), machine_id="m-2")
    for agent in (a, b):
        assert api.post_report(agent, make_report(machine_id=agent.machine_id)).status_code == 201
    assert signature_finding(api, a.host_id)["status"] == "fail"  # province: 0.5 days
    assert signature_finding(api, b.host_id)["status"] == "pass"  # agency: back to 7


def test_agency_parameters_column_defaults_to_empty(api: Api) -> None:
    agency = api.create_agency()
    with Session(api.engine) as session:
        row = session.get(Agency, agency["id"])
        assert row is not None and row.parameters == {}
