"""Run the agent as a Windows service (pywin32), with config and state under %ProgramData%.

    python -m agent.winservice install --startup auto   # register (as LocalSystem)
    python -m agent.winservice start | stop | remove
    python -m agent.winservice debug                    # run in the console

The service host is pywin32's ``pythonservice.exe``; the optional extra
``posture-scanner[windows]`` installs pywin32.  Recovery on failure is set by
deploy/windows/install.ps1 with ``sc.exe failure`` (restart after 1, 1 and 5
minutes) and ``sc.exe failureflag 1``, so a crash or a non-zero exit restarts
the service.  Stop requests set an event the scheduling loop waits on: the
current collection finishes (its probes are time-boxed) and the service stops.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

from agent.config import AgentConfig, Enrollment, default_config_path, update_status
from agent.service import ServiceLoop, collect_once, deliver, spool_for

try:  # pywin32: only on Windows, only with the "windows" extra
    import servicemanager  # type: ignore[import-not-found]
    import win32service  # type: ignore[import-not-found]
    import win32serviceutil  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised on Linux by the absence of pywin32
    servicemanager = win32service = win32serviceutil = None

SERVICE_NAME = "PostureAgent"
DISPLAY_NAME = "Posture Agent (Điều 16–19 security posture)"
DESCRIPTION = (
    "Collects security facts of this machine and sends them to the agency's posture collector."
)
LOG_FILE = "agent.log"

log = logging.getLogger(__name__)


def build_loop(config: AgentConfig, enrollment: Enrollment, stop: threading.Event) -> ServiceLoop:
    """The agent's scheduling loop, stopped by ``stop`` instead of POSIX signals."""
    spool = spool_for(config)

    def deliver_now() -> bool:
        from agent.client import CredentialRejected

        try:
            return deliver(config, spool, enrollment)
        except CredentialRejected as exc:
            log.error("the collector refused this agent's credential: %s; re-enroll", exc)
            update_status(config.state_dir, last_error=f"credential refused: {exc}")
            return False

    return ServiceLoop(
        interval=config.interval_seconds,
        jitter=config.jitter_seconds,
        collect=lambda: collect_once(config, spool),
        deliver=deliver_now,
        wait=stop.wait,
    )


def setup_logging(state_dir: Path) -> None:
    """A rotating log file next to the spool (a service has no console)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        state_dir / LOG_FILE, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def service_main(stop: threading.Event, config_path: Path | None = None) -> int:
    """Body of the service: 0 when stopped on request, 2 when not enrolled."""
    config = AgentConfig.load(config_path or default_config_path())
    setup_logging(config.state_dir)
    enrollment = Enrollment.load(config.state_dir)
    if enrollment is None:
        log.error(
            "not enrolled (no %s): run `posture-agent enroll --collector URL --token TOKEN`",
            Enrollment.path(config.state_dir),
        )
        return 2
    log.info("service started; config %s, state %s", config_path, config.state_dir)
    return build_loop(config, enrollment, stop).run()


if win32serviceutil is not None:  # pragma: no cover - needs Windows

    class PostureAgentService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: list[str]) -> None:
            super().__init__(args)
            self.stop_event = threading.Event()

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self.stop_event.set()

        def SvcDoRun(self) -> None:
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
            try:
                code = service_main(self.stop_event)
            except Exception:
                log.exception("service failed")
                code = 1
            if code != 0 and not self.stop_event.is_set():
                # Exit without reporting SERVICE_STOPPED: the SCM counts a failure
                # and applies the recovery actions (restart).
                logging.shutdown()
                os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if win32serviceutil is None:
        print(
            "error: the Windows service needs pywin32 (pip install 'posture-scanner[windows]')",
            file=sys.stderr,
        )
        return 2
    if len(argv) == 1:  # pragma: no cover - started by the service control manager
        servicemanager.Initialize()
        servicemanager.PrepareToHostSingle(PostureAgentService)
        servicemanager.StartServiceCtrlDispatcher()
        return 0
    win32serviceutil.HandleCommandLine(PostureAgentService, argv=argv)  # pragma: no cover
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
