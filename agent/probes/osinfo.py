"""Operating system identity from os-release, plus kernel and uptime.

``/etc/os-release`` (falling back to ``/usr/lib/os-release``) is a list of
``KEY=value`` assignments whose values follow shell quoting rules
(os-release(5)); values are unquoted with :mod:`shlex`.  Kernel release,
architecture and boot time describe the running system, so they are only
read on a live host.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import time
from datetime import UTC, datetime

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import OsSection

OS_RELEASE_PATHS: tuple[str, ...] = ("/etc/os-release", "/usr/lib/os-release")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE_PAIR = re.compile(r"\\(.)")


def _shell_unquote(value: str) -> str:
    """Unquote one shell-style value with :mod:`shlex`.

    Inside double quotes shlex keeps the backslash of an escaped dollar sign
    or backtick, where the shell (and os-release(5)) drops it; those two
    escapes are resolved first, unless the value uses single quotes (where a
    backslash is literal).
    """
    if "'" not in value:
        value = _ESCAPE_PAIR.sub(lambda m: m.group(1) if m.group(1) in "$`" else m.group(0), value)
    try:
        tokens = shlex.split(value, comments=False, posix=True)
    except ValueError:  # unbalanced quotes: keep the text without them
        tokens = [value.strip().strip("\"'")]
    # A valid value is one shell word; tolerate unquoted spaces.
    return " ".join(tokens)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release content into a dict; malformed lines are skipped."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            continue
        result[key] = _shell_unquote(value)
    return result


def os_fields(release: dict[str, str]) -> dict[str, object]:
    """Map parsed os-release keys onto OsSection fields."""
    name = release.get("PRETTY_NAME") or release.get("NAME") or None
    return {
        "name": name,
        "id": release.get("ID") or None,
        "id_like": release.get("ID_LIKE", "").split(),
        "version": release.get("VERSION_ID") or None,
    }


def _read_in_root(ctx: ProbeContext, absolute: str) -> str | None:
    """Read a file under the root, resolving an absolute symlink inside the root.

    ``/etc/os-release`` is usually a symlink; an absolute target would
    otherwise be followed to the host's own file when auditing an image.
    """
    path = ctx.path(absolute)
    for _ in range(8):  # bounded: a symlink loop must not hang the probe
        try:
            if not path.is_symlink():
                break
            target = os.readlink(path)
        except OSError:
            return None
        path = ctx.path(target) if os.path.isabs(target) else path.parent / target
    else:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(64 * 1024)
    except (OSError, ValueError):
        return None


def probe(ctx: ProbeContext) -> OsSection:
    notes: list[str] = []
    live_fields: dict[str, object] = {}
    if ctx.live:
        live_fields["kernel"] = platform.release() or None
        live_fields["arch"] = platform.machine() or None
        try:
            import psutil

            boot = psutil.boot_time()
            live_fields["boot_time"] = datetime.fromtimestamp(boot, UTC)
            live_fields["uptime_seconds"] = max(0, int(time.time() - boot))
        except Exception as exc:  # psutil raises various errors on odd platforms
            notes.append(f"boot time unreadable: {exc}")
    else:
        notes.append("not a live host: kernel, architecture and uptime not observed")

    for candidate in OS_RELEASE_PATHS:
        text = _read_in_root(ctx, candidate)
        if text is not None:
            fields = os_fields(parse_os_release(text))
            if fields["name"] is None and fields["id"] is None:
                notes.append(f"{candidate} has neither NAME nor ID")
            return OsSection(notes=notes, **fields, **live_fields)  # type: ignore[arg-type]
    return unknown(
        OsSection,
        "no os-release file (/etc/os-release, /usr/lib/os-release)",
        notes=notes,
        **live_fields,
    )
