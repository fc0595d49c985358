"""``posture-collector user …`` / ``audit``: people are managed from the collector host."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

from collector import cli
from collector.app import create_app
from collector.settings import Settings

PASSWORD = "một-mật-khẩu-dài-đủ"


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.delenv("POSTURE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def _add(monkeypatch, *args: str, password: str | None = PASSWORD) -> int:
    argv = ["user", "add", *args]
    if password is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        argv.append("--password-stdin")
    return cli.main(argv)


def test_users_from_the_cli_sign_in_over_the_api(database_url, monkeypatch, capsys) -> None:
    assert cli.main(["agency", "create", "--code", "so-tttt", "--name", "Sở", "--level", "3"]) == 0
    assert _add(monkeypatch, "lan", "--role", "agency_admin", "--agency", "so-tttt") == 0
    assert "Cán bộ chuyên trách CNTT" in capsys.readouterr().out
    assert _add(monkeypatch, "huy", "--role", "province_reviewer") == 0
    # refused: agency role without agency, unknown agency, short password, duplicate
    assert _add(monkeypatch, "x", "--role", "agency_admin") == 1
    assert "needs an agency_id" in capsys.readouterr().err
    assert _add(monkeypatch, "y", "--role", "agency_admin", "--agency", "nope") == 1
    assert "no agency with code" in capsys.readouterr().err
    assert _add(monkeypatch, "z", "--role", "province_reviewer", password="ngắn") == 1
    assert "at least 12" in capsys.readouterr().err
    assert _add(monkeypatch, "lan", "--role", "province_reviewer") == 1
    assert "already exists" in capsys.readouterr().err

    assert cli.main(["user", "list"]) == 0
    listing = capsys.readouterr().out
    assert "lan\tagency_admin\tagency 1\tactive" in listing
    assert "huy\tprovince_reviewer\tprovince\tactive" in listing

    with TestClient(create_app(Settings(database_url=database_url))) as client:
        r = client.post("/api/v1/auth/token", json={"username": "lan", "password": PASSWORD})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        me = client.get("/api/v1/users/me", headers=headers).json()
        assert (me["role"], me["agency_id"]) == ("agency_admin", 1)

        assert cli.main(["user", "disable", "lan"]) == 0
        assert client.get("/api/v1/users/me", headers=headers).status_code == 401
        r = client.post("/api/v1/auth/token", json={"username": "lan", "password": PASSWORD})
        assert r.status_code == 401
        assert cli.main(["user", "enable", "lan"]) == 0
        r = client.post("/api/v1/auth/token", json={"username": "lan", "password": PASSWORD})
        assert r.status_code == 201

        # a service account: no password, an API token from the CLI
        assert _add(monkeypatch, "bao-cao", "--role", "province_reviewer", password=None) == 0
        capsys.readouterr()
        assert cli.main(["user", "token", "bao-cao", "--label", "báo cáo", "--days", "30"]) == 0
        token = capsys.readouterr().out.strip()
        assert token.startswith("pu_")
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["actor"] == "user:bao-cao"

    assert cli.main(["audit", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    actions = [line.split('"action": "')[1].split('"')[0] for line in lines]
    assert actions.count("user.create") == 3
    assert {"agency.create", "user.update", "user.token_issue", "auth.login"} <= set(actions)
    assert all('"actor": "cli:' in line for line in lines if "user.create" in line)
    assert cli.main(["audit", "--agency", "so-tttt"]) == 0
    assert "agency.create" in capsys.readouterr().out


def test_password_change_revokes_tokens(database_url, monkeypatch, capsys) -> None:
    assert _add(monkeypatch, "an", "--role", "province_admin") == 0
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        r = client.post("/api/v1/auth/token", json={"username": "an", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.get("/api/v1/users", headers=headers).status_code == 200
        monkeypatch.setattr("sys.stdin", io.StringIO("mật-khẩu-mới-rất-dài\n"))
        assert cli.main(["user", "password", "an", "--password-stdin"]) == 0
        assert client.get("/api/v1/users", headers=headers).status_code == 401
        r = client.post(
            "/api/v1/auth/token", json={"username": "an", "password": "mật-khẩu-mới-rất-dài"}
        )
        assert r.status_code == 201
