"""The Windows service wrapper, as far as it can run without Windows."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from agent import winservice
from agent.config import AgentConfig, Enrollment


def test_main_without_pywin32_explains(capsys: pytest.CaptureFixture[str]) -> None:
    if winservice.win32serviceutil is not None:
        pytest.skip("pywin32 is installed")
    assert winservice.main(["winservice", "install"]) == 2
    assert "pywin32" in capsys.readouterr().err


def test_not_enrolled_exits_2_and_logs(tmp_path: Path) -> None:
    saved = logging.root.handlers[:], logging.root.level
    config = tmp_path / "agent.toml"
    state = tmp_path / "state"
    config.write_text(f'state_dir = "{state.as_posix()}"\n', encoding="utf-8")
    try:
        assert winservice.service_main(threading.Event(), config) == 2
    finally:  # the service configures the root logger: give pytest its handlers back
        for handler in logging.root.handlers:
            handler.close()
        logging.root.handlers[:], _ = saved
        logging.root.setLevel(saved[1])
    assert "not enrolled" in (state / winservice.LOG_FILE).read_text(encoding="utf-8")


def test_stop_event_ends_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = AgentConfig(state_dir=tmp_path, interval_seconds=3600, jitter_seconds=0)
    enrollment = Enrollment("https://collector.example", "a1", 1, "secret", {})
    collected: list[int] = []
    monkeypatch.setattr(winservice, "collect_once", lambda c, s: collected.append(1))
    monkeypatch.setattr(winservice, "deliver", lambda c, s, e: True)
    stop = threading.Event()
    stop.set()  # a stop request arrived: the loop must return after its first round
    assert winservice.build_loop(config, enrollment, stop).run() == 0
    assert collected == [1]
