"""Database and storage checks on crafted facts: pass, fail, unknown and role applicability."""

from __future__ import annotations

from typing import Any

import pytest

from agent.report import (
    DatabaseSection,
    DatabaseServer,
    RemoteMount,
    Report,
    StorageSection,
)
from policies import evaluate_host
from policies.framework import load_framework
from policies.model import Finding
from policies.registry import load_checks
from tests.factories import make_report

PG = DatabaseServer(
    engine="postgresql", version="15", running=True, listen_addresses=["127.0.0.1", "::1"],
    network_exposed=False, config_files=["/etc/postgresql/15/main/pg_hba.conf"],
)  # fmt: skip
NAS = RemoteMount(source="nas01:/export/vanban", mountpoint="/srv/vanban", fstype="nfs4")


def databases(*servers: DatabaseServer, **changes: Any) -> DatabaseSection:
    return DatabaseSection(servers=list(servers), **changes)


def storage(**changes: Any) -> StorageSection:
    base = StorageSection(iscsi_sessions=0, multipath_devices=0, fc_hosts=0)
    return base.model_copy(update=changes)


def finding(rep: Report, check_id: str, role: str | None = "server", level: int = 3) -> Finding:
    ev = evaluate_host(rep, level, role)
    return next(f for f in ev.findings if f.check_id == check_id)


def requirement(rep: Report, req_id: str, level: int = 3, role: str = "server") -> str:
    ev = evaluate_host(rep, level, role)
    return next(r.status for r in ev.requirements if r.requirement_id == req_id)


# --- wiring ---------------------------------------------------------------------------


def test_checks_are_wired_to_their_requirements() -> None:
    fw = load_framework()
    assert fw.requirements_of_check("db_secure_config") == ["D19.2.b"]
    assert fw.requirements_of_check("storage_professional") == ["D17.1.L3.b"]
    checks = load_checks()
    assert checks["db_secure_config"].roles == ("server",)
    assert checks["db_secure_config"].severity == "high"
    assert checks["storage_professional"].roles == ("server",)
    assert checks["storage_professional"].severity == "low"  # "cần": needs


@pytest.mark.parametrize("check_id", ["db_secure_config", "storage_professional"])
def test_not_applicable_to_workstations(check_id: str) -> None:
    rep = make_report(databases=databases(), storage=storage())
    f = finding(rep, check_id, role="workstation")
    assert f.status == "not_applicable"


@pytest.mark.parametrize("section", ["databases", "storage"])
def test_older_agent_without_the_section_is_unknown(section: str) -> None:
    rep = make_report(**{section: None})
    check_id = "db_secure_config" if section == "databases" else "storage_professional"
    f = finding(rep, check_id)
    assert f.status == "unknown" and "nâng cấp tác tử" in f.evidence.vi


# --- db_secure_config (Điều 19 khoản 2) ---------------------------------------------------


def test_no_database_passes() -> None:
    f = finding(make_report(databases=databases()), "db_secure_config")
    assert f.status == "pass"
    assert f.evidence.vi.startswith("Không có máy chủ cơ sở dữ liệu nào")
    assert f.requirement_ids == ["D19.2.b"]


def test_loopback_database_without_issue_passes() -> None:
    f = finding(make_report(databases=databases(PG)), "db_secure_config")
    assert f.status == "pass"
    assert "PostgreSQL 15" in f.evidence.vi and "Lắng nghe trên mạng: —" in f.evidence.vi


def test_exposure_alone_is_reported_not_failed() -> None:
    exposed = PG.model_copy(
        update={"listen_addresses": ["0.0.0.0", "::"], "network_exposed": True}
    )
    f = finding(make_report(databases=databases(exposed)), "db_secure_config")
    assert f.status == "pass"
    assert "PostgreSQL 15 (0.0.0.0, ::)" in f.evidence.en
    assert "TLS" in f.evidence.en


def test_trust_and_no_password_fail_in_words() -> None:
    trust = PG.model_copy(update={"auth_issues": ["pg_trust_remote"]})
    redis = DatabaseServer(
        engine="redis", running=True, listen_addresses=["0.0.0.0"], network_exposed=True,
        auth_issues=["redis_no_password", "redis_protected_mode_off"],
    )  # fmt: skip
    rep = make_report(databases=databases(trust, redis))
    f = finding(rep, "db_secure_config")
    assert f.status == "fail" and f.severity == "high"
    assert "PostgreSQL 15: pg_hba.conf cho phép máy khác kết nối bằng phương thức trust" in (
        f.evidence.vi
    )
    assert "Redis: no password is set" in f.evidence.en
    assert "Redis: protected-mode is off" in f.evidence.en
    assert "Redis (0.0.0.0)" in f.evidence.en
    assert f.data["issues"] == [
        "postgresql:pg_trust_remote", "redis:redis_no_password", "redis:redis_protected_mode_off"
    ]  # fmt: skip
    assert requirement(rep, "D19.2.b") == "fail"


@pytest.mark.parametrize(
    ("engine", "code", "words"),
    [
        ("mariadb", "mysql_skip_grant_tables", "skip-grant-tables đang bật"),
        ("mongodb", "mongodb_authorization_disabled", "security.authorization chưa bật"),
        ("postgresql", "pg_trust_local", "kết nối cục bộ bằng phương thức trust"),
    ],
)
def test_each_issue_code_has_words(engine: str, code: str, words: str) -> None:
    server = DatabaseServer(engine=engine, auth_issues=[code])  # type: ignore[arg-type]
    f = finding(make_report(databases=databases(server)), "db_secure_config")
    assert f.status == "fail" and words in f.evidence.vi


def test_unreadable_config_is_unknown() -> None:
    hidden = PG.model_copy(
        update={"unreadable_files": ["/etc/postgresql/15/main/pg_hba.conf"], "config_files": []}
    )
    f = finding(make_report(databases=databases(hidden)), "db_secure_config")
    assert f.status == "unknown"
    assert "/etc/postgresql/15/main/pg_hba.conf" in f.evidence.vi and "root" in f.evidence.vi


def test_a_weak_server_fails_even_if_another_is_unreadable() -> None:
    hidden = PG.model_copy(update={"unreadable_files": ["/etc/postgresql/15/main/pg_hba.conf"]})
    mongo = DatabaseServer(engine="mongodb", auth_issues=["mongodb_authorization_disabled"])
    f = finding(make_report(databases=databases(hidden, mongo)), "db_secure_config")
    assert f.status == "fail"


def test_unobserved_databases_section_is_unknown() -> None:
    section = DatabaseSection(status="unknown", reason="the root has no /etc to read")
    f = finding(make_report(databases=section), "db_secure_config")
    assert f.status == "unknown" and "/etc" in f.evidence.en


# --- storage_professional (Điều 17 khoản 1, Mức độ 3) -----------------------------------


def test_iscsi_session_passes() -> None:
    f = finding(make_report(storage=storage(iscsi_sessions=2)), "storage_professional")
    assert f.status == "pass" and "iSCSI: 2" in f.evidence.vi
    assert f.requirement_ids == ["D17.1.L3.b"]


def test_nas_mount_passes_even_without_sysfs() -> None:
    section = StorageSection(remote_mounts=[NAS])
    f = finding(make_report(storage=section), "storage_professional")
    assert f.status == "pass" and "nfs4 nas01:/export/vanban → /srv/vanban" in f.evidence.en


def test_fstab_only_mount_is_labelled() -> None:
    section = StorageSection(remote_mounts=[NAS.model_copy(update={"mounted": False})])
    f = finding(make_report(storage=section), "storage_professional")
    assert f.status == "pass" and "(/etc/fstab)" in f.evidence.vi


def test_local_disks_only_fails_with_low_severity() -> None:
    rep = make_report(storage=storage())
    f = finding(rep, "storage_professional")
    assert f.status == "fail" and f.severity == "low"
    assert "SAN" in f.remediation.vi and "NAS" in f.remediation.en
    assert requirement(rep, "D17.1.L3.b") == "fail"


def test_storage_requirement_does_not_apply_below_level_3() -> None:
    rep = make_report(storage=storage())
    assert requirement(rep, "D17.1.L3.b", level=2) == "not_applicable"


def test_unseen_sessions_without_mounts_are_unknown() -> None:
    f = finding(make_report(storage=StorageSection()), "storage_professional")
    assert f.status == "unknown" and "sysfs" in f.evidence.en
