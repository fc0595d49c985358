"""Installed software inventory (dpkg and rpm).

dpkg
    The status database ``/var/lib/dpkg/status`` under the probed root is
    parsed directly, so no command runs and ``--root`` audits work.  A
    package is listed when its ``Status`` says its files are installed
    (``installed``, or ``triggers-pending``/``triggers-awaited``, which are
    installed packages waiting for a trigger).  ``config-files`` and
    ``not-installed`` stanzas are left out; packages stuck half-way
    (``unpacked``, ``half-configured``, ``half-installed``) are counted in a
    note.

    Install time: dpkg keeps no install date.  ``/var/lib/dpkg/info/<pkg>.list``
    (``<pkg>:<arch>.list`` for ``Multi-Arch: same`` packages) is rewritten
    each time the package is unpacked, so its mtime is the time of the last
    install *or upgrade* of that package; that is what ``installed_at``
    holds for dpkg.

rpm
    ``rpm -qa`` with a tab-separated query format (``INSTALLTIME`` is the
    install/upgrade time recorded by rpm).  With an alternate root the host's
    rpm reads the root's database via ``--root``/``--dbpath``.  Versions are
    ``[epoch:]version-release`` with a zero epoch omitted, as dpkg does.
    ``gpg-pubkey`` pseudo-packages (imported signing keys) are dropped.

The manager is chosen by which database exists under the root; when both
exist, the one holding more packages is reported and the other is noted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.report import Package, SoftwareSection

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
RPM_DB_DIRS: tuple[str, ...] = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
RPM_DB_FILES: tuple[str, ...] = ("rpmdb.sqlite", "Packages", "Packages.db")
RPM_QUERY_FORMAT = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{INSTALLTIME}\\n"
RPM_TIMEOUT = 25.0
STATUS_READ_LIMIT = 64 * 1024 * 1024

INSTALLED_STATES: frozenset[str] = frozenset({"installed", "triggers-pending", "triggers-awaited"})
PARTIAL_STATES: frozenset[str] = frozenset({"unpacked", "half-configured", "half-installed"})


@dataclass(frozen=True)
class DpkgRecord:
    """One stanza of the dpkg status database (only the fields we use)."""

    name: str
    version: str
    arch: str | None
    want: str
    state: str

    @property
    def installed(self) -> bool:
        return self.state in INSTALLED_STATES


def parse_dpkg_status(text: str) -> list[DpkgRecord]:
    """Parse a dpkg status file into records (every stanza with Package and Status)."""
    records: list[DpkgRecord] = []
    name = version = arch = status = None
    for line in text.split("\n"):
        if not line or line.isspace():
            if name is not None and status is not None:
                records.append(_record(name, version, arch, status))
            name = version = arch = status = None
            continue
        first = line[0]
        if first == " " or first == "\t":
            continue  # continuation of a multi-line field (Description, Conffiles)
        key, _, value = line.partition(":")
        if key == "Package":
            name = value.strip()
        elif key == "Status":
            status = value
        elif key == "Version":
            version = value.strip()
        elif key == "Architecture":
            arch = value.strip()
    if name is not None and status is not None:
        records.append(_record(name, version, arch, status))
    return records


def _record(name: str, version: str | None, arch: str | None, status: str) -> DpkgRecord:
    words = status.split()
    want = words[0] if words else ""
    state = words[-1] if len(words) >= 3 else ""
    return DpkgRecord(name=name, version=version or "", arch=arch or None, want=want, state=state)


def dpkg_list_mtimes(info_dir: Path) -> dict[str, float]:
    """mtime of every ``<pkg>[:<arch>].list`` file in dpkg's info directory."""
    mtimes: dict[str, float] = {}
    try:
        with os.scandir(info_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".list"):
                    try:
                        mtimes[entry.name[:-5]] = entry.stat().st_mtime
                    except OSError:
                        continue
    except OSError:
        return {}
    return mtimes


def dpkg_packages(records: list[DpkgRecord], list_mtimes: dict[str, float]) -> list[Package]:
    """Installed packages with their install/upgrade time from the .list mtimes."""
    packages: list[Package] = []
    for rec in records:
        if not rec.installed:
            continue
        mtime = list_mtimes.get(f"{rec.name}:{rec.arch}") if rec.arch else None
        if mtime is None:
            mtime = list_mtimes.get(rec.name)
        packages.append(
            Package(
                name=rec.name,
                version=rec.version,
                arch=rec.arch,
                installed_at=datetime.fromtimestamp(mtime, UTC) if mtime is not None else None,
            )
        )
    return packages


def parse_rpm_qa(text: str) -> list[Package]:
    """Parse ``rpm -qa --qf RPM_QUERY_FORMAT`` output; gpg-pubkey entries are dropped."""
    packages: list[Package] = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0] or parts[0] == "gpg-pubkey":
            continue
        name, evr, arch, installtime = parts
        if evr.startswith("0:"):
            evr = evr[2:]
        installed_at = (
            datetime.fromtimestamp(int(installtime), UTC) if installtime.isdigit() else None
        )
        packages.append(
            Package(
                name=name,
                version=evr,
                arch=None if arch in ("", "(none)") else arch,
                installed_at=installed_at,
            )
        )
    return packages


@dataclass
class _Inventory:
    manager: Literal["dpkg", "rpm"]
    packages: list[Package]
    notes: list[str]


def _collect_dpkg(ctx: ProbeContext) -> _Inventory | str:
    text = ctx.read_text(DPKG_STATUS, limit=STATUS_READ_LIMIT)
    if text is None:
        return f"{DPKG_STATUS} is not readable"
    records = parse_dpkg_status(text)
    packages = dpkg_packages(records, dpkg_list_mtimes(ctx.path(DPKG_INFO)))
    notes: list[str] = []
    partial = sorted(r.name for r in records if r.state in PARTIAL_STATES)
    if partial:
        shown = ", ".join(partial[:10]) + (", ..." if len(partial) > 10 else "")
        notes.append(f"{len(partial)} dpkg packages half-installed or unconfigured: {shown}")
    if packages and all(p.installed_at is None for p in packages):
        notes.append(f"install times unknown: no .list files in {DPKG_INFO}")
    return _Inventory("dpkg", packages, notes)


def _rpm_dbpath(ctx: ProbeContext) -> str | None:
    for directory in RPM_DB_DIRS:
        if any(ctx.exists(f"{directory}/{name}") for name in RPM_DB_FILES):
            return directory
    return None


def _collect_rpm(ctx: ProbeContext, dbpath: str) -> _Inventory | str:
    argv = ["rpm", "-qa", "--qf", RPM_QUERY_FORMAT]
    if ctx.root.resolve() != Path("/"):
        argv += ["--root", str(ctx.root), "--dbpath", dbpath]
    try:
        result = ctx.runner.run(argv, timeout=RPM_TIMEOUT)
    except ToolMissing:
        return f"rpm database found in {dbpath} but 'rpm' is not installed"
    except CommandTimeout as exc:
        return str(exc)
    if not result.ok:
        detail = result.stderr.strip().splitlines()[:1]
        return f"rpm -qa failed (exit {result.returncode})" + (f": {detail[0]}" if detail else "")
    notes = [] if ctx.live else ["rpm database read with the host's rpm (--root)"]
    return _Inventory("rpm", parse_rpm_qa(result.stdout), notes)


def probe(ctx: ProbeContext) -> SoftwareSection:
    outcomes: list[_Inventory | str] = []
    if ctx.exists(DPKG_STATUS):
        outcomes.append(_collect_dpkg(ctx))
    dbpath = _rpm_dbpath(ctx)
    if dbpath is not None:
        outcomes.append(_collect_rpm(ctx, dbpath))
    found = [o for o in outcomes if isinstance(o, _Inventory)]
    failures = [o for o in outcomes if isinstance(o, str)]

    if not found:
        reason = "; ".join(failures) or (
            f"no package database found ({DPKG_STATUS}, rpm database in {' or '.join(RPM_DB_DIRS)})"
        )
        return unknown(SoftwareSection, reason)

    found.sort(key=lambda inv: len(inv.packages), reverse=True)
    primary = found[0]
    notes = list(primary.notes) + failures
    for other in found[1:]:
        if other.packages:
            notes.append(f"{other.manager} database also holds {len(other.packages)} packages")
    packages = sorted(primary.packages, key=lambda p: (p.name, p.arch or ""))
    return SoftwareSection(manager=primary.manager, packages=packages, notes=notes)
