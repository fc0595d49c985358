"""The operator CLI works on the database directly."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from collector import cli
from collector.db import create_db_engine
from collector.models import Agency, EnrollmentToken
from collector.settings import Settings
from collector.tokens import hash_secret


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.delenv("POSTURE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def test_agency_and_token_commands(database_url, capsys) -> None:
    assert (
        cli.main(["agency", "create", "--code", "so-tttt", "--name", "Sở TTTT", "--level", "3"])
        == 0
    )
    assert cli.main(["agency", "create", "--code", "so-tttt", "--name", "Dup", "--level", "2"]) == 1
    assert "already exists" in capsys.readouterr().err

    assert cli.main(["agency", "list"]) == 0
    assert "so-tttt" in capsys.readouterr().out

    assert cli.main(["token", "create", "--agency", "so-tttt", "--expires-in-hours", "2"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("pe_")
    assert cli.main(["token", "create", "--agency", "nope"]) == 1

    engine = create_db_engine(Settings(database_url=database_url))
    with Session(engine) as session:
        agency = session.exec(select(Agency)).one()
        assert (agency.code, agency.level) == ("so-tttt", 3)
        row = session.exec(select(EnrollmentToken)).one()
        assert row.token_hash == hash_secret(token)
        assert row.expires_at is not None
    engine.dispose()


def test_invalid_level_is_refused(database_url) -> None:
    with pytest.raises(SystemExit):
        cli.main(["agency", "create", "--code", "x", "--name", "X", "--level", "5"])


def test_demo_delegates_to_demo_module(monkeypatch) -> None:
    import sys
    import types

    seen = {}
    fake = types.ModuleType("collector.demo")

    def fake_main(args) -> int:
        seen.update(vars(args))
        return 7

    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "collector.demo", fake)
    assert cli.main(["demo", "--lang", "en", "--keep", "--db", "/tmp/x.db"]) == 7
    assert seen["port"] == 0 and seen["level"] == 3 and seen["lang"] == "en"
    assert seen["keep"] is True and seen["db"] == "/tmp/x.db"
    assert seen["workdir"] is None and seen["role"] is None
