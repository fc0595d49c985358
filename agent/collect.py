"""Run every probe, each isolated and time-boxed, and assemble a report."""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import SECTION_MODELS, SECTION_NAMES, HostIdentity, HostRole, Report, Section

log = logging.getLogger(__name__)

# section name -> module under agent.probes exposing probe(ctx)
PROBE_MODULES: dict[str, str] = {
    "hardware": "hardware",
    "os": "osinfo",
    "software": "software",
    "network": "network",
    "antivirus": "antivirus",
    "patches": "patches",
    "firewall": "firewall",
    "ids": "ids",
    "logging": "logging",
    "auth": "auth",
    "encryption": "encryption",
    "backup": "backup",
    "databases": "databases",
    "storage": "storage",
}

DEFAULT_PROBE_TIMEOUT = 30.0

Probe = Callable[[ProbeContext], Section]


def load_probe(section: str) -> Probe:
    module = importlib.import_module(f"agent.probes.{PROBE_MODULES[section]}")
    return module.probe


def run_probe(section: str, probe: Probe | None, ctx: ProbeContext) -> Section:
    """Run one probe; any exception becomes an ``unknown`` section with the reason."""
    model = SECTION_MODELS[section]
    try:
        result = (probe or load_probe(section))(ctx)
    except Exception as exc:  # a broken probe must never crash the run
        log.exception("probe %s failed", section)
        return unknown(model, f"probe error: {type(exc).__name__}: {exc}")
    if not isinstance(result, model):
        return unknown(model, f"probe returned {type(result).__name__}, expected {model.__name__}")
    return result


def collect_sections(
    ctx: ProbeContext,
    sections: tuple[str, ...] = SECTION_NAMES,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    probes: dict[str, Probe] | None = None,
) -> dict[str, Section]:
    """Run probes concurrently; a probe over its time budget yields ``unknown``."""
    probes = probes or {}
    results: dict[str, Section] = {}
    slots = threading.BoundedSemaphore(8)  # probes running at once
    futures = {name: _start(slots, run_probe, name, probes.get(name), ctx) for name in sections}
    deadline = time.monotonic() + timeout
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except cf.TimeoutError:
            future.cancel()  # not started yet: it never will be
            results[name] = unknown(
                SECTION_MODELS[name], f"probe did not finish within {timeout:g}s"
            )
    return results


def _start(slots: threading.BoundedSemaphore, fn: Any, *args: Any) -> cf.Future[Any]:
    """``fn(*args)`` in a daemon thread: a stuck probe (its commands carry their own
    timeouts) is not waited for, not even when a one-shot run exits, as the threads
    of a ``ThreadPoolExecutor`` would be."""
    future: cf.Future[Any] = cf.Future()

    def run() -> None:
        with slots:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller with the result
                future.set_exception(exc)

    threading.Thread(target=run, name=f"probe-{args[0]}", daemon=True).start()
    return future


def host_identity(ctx: ProbeContext, role: HostRole = "unknown") -> HostIdentity:
    import platform
    import socket

    hostname = (ctx.read_text("/etc/hostname") or "").strip() if not ctx.live else ""
    hostname = hostname or socket.gethostname()
    machine_id = (ctx.read_text("/etc/machine-id") or "").strip() or None
    fqdn = None
    if ctx.live:
        try:
            fqdn = socket.getfqdn()
        except OSError:
            fqdn = None
    system = platform.system().lower()
    os_family = system if system in ("linux", "windows", "darwin") else "other"
    if machine_id is None and os_family == "windows":
        from agent.probes.windows.runner import machine_guid

        machine_id = machine_guid()
    return HostIdentity(
        hostname=hostname, fqdn=fqdn, machine_id=machine_id, os_family=os_family, role=role
    )


def collect(
    ctx: ProbeContext | None = None,
    role: HostRole = "unknown",
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    platform: str | None = None,
) -> Report:
    """Collect one full report from this host (or from ``ctx.root``).

    ``platform`` (default ``sys.platform``) selects the probes: ``win32`` runs
    the Windows probes of ``agent.probes.windows`` on a live host.
    """
    ctx = ctx or ProbeContext()
    windows = (platform or sys.platform) == "win32" and ctx.live
    probes = None
    if windows:
        from agent.probes import windows as windows_probes
        from agent.probes.windows.runner import prepare_context

        ctx, probes = prepare_context(ctx), windows_probes.probes()
    started = time.monotonic()
    sections = collect_sections(ctx, timeout=timeout, probes=probes)
    host = host_identity(ctx, role)
    if windows:
        host = host.model_copy(update={"os_family": "windows"})
    return Report(
        agent_version=__version__,
        host=host,
        collection_seconds=round(time.monotonic() - started, 3),
        **sections,
    )
