"""Operating system identity from os-release, plus kernel and uptime.

``/etc/os-release`` (falling back to ``/usr/lib/os-release``) is a list of
``KEY=value`` assignments whose values follow shell quoting rules
(os-release(5)); values are unquoted with :mod:`shlex`.  Kernel release,
architecture and boot time describe the running system, so they are only
read on a live host.

Installed kernels (Lynis KRNL-5830) are the union of ``/boot/vmlinuz-<release>``
(``-rescue-`` images excluded) and ``/lib/modules/<release>`` directories that
hold a packaged module tree.  They are file-based facts, so they are read under
an alternate root too; whether a reboot is pending needs the running kernel and
is therefore only decided on a live host.  Releases are ordered like ``ls -v``
/ dpkg: digit runs compare numerically (``6.1.0-27-amd64`` > ``6.1.0-9-amd64``).
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cmp_to_key
from pathlib import Path

from agent.probes import unknown
from agent.probes.base import ProbeContext
from agent.report import OsSection

OS_RELEASE_PATHS: tuple[str, ...] = ("/etc/os-release", "/usr/lib/os-release")

BOOT_DIR = "/boot"
MODULES_DIRS: tuple[str, ...] = ("/lib/modules", "/usr/lib/modules")
# Files a kernel package ships in /lib/modules/<release>; a directory without
# them is a leftover (e.g. DKMS output of a removed kernel), not a kernel.
_MODULE_TREE_MARKERS: tuple[str, ...] = ("modules.builtin", "modules.order", "kernel")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION_PART = re.compile(r"(\D*)(\d*)")
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


# --- installed vs running kernel ----------------------------------------------


def _char_order(ch: str) -> int:
    """dpkg ordering of a non-digit character: '~' < end of part < letters < others."""
    if ch == "~":
        return -1
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 0x110000  # every non-letter after every letter


def _compare_text(a: str, b: str) -> int:
    for i in range(max(len(a), len(b))):
        x = _char_order(a[i]) if i < len(a) else 0
        y = _char_order(b[i]) if i < len(b) else 0
        if x != y:
            return -1 if x < y else 1
    return 0


def compare_versions(a: str, b: str) -> int:
    """Compare two version strings like dpkg / ``ls -v``: -1, 0 or 1.

    Both strings are split into alternating non-digit and digit runs; digit
    runs compare as numbers, non-digit runs character by character with
    letters before other characters and ``~`` before everything (so
    ``6.1~rc1`` < ``6.1``).
    """
    parts_a = _VERSION_PART.findall(a)
    parts_b = _VERSION_PART.findall(b)
    for i in range(max(len(parts_a), len(parts_b))):
        text_a, num_a = parts_a[i] if i < len(parts_a) else ("", "")
        text_b, num_b = parts_b[i] if i < len(parts_b) else ("", "")
        order = _compare_text(text_a, text_b)
        if order:
            return order
        na, nb = int(num_a or 0), int(num_b or 0)
        if na != nb:
            return -1 if na < nb else 1
    return 0


version_key = cmp_to_key(compare_versions)


def kernel_flavour(release: str) -> str:
    """The build flavour of a kernel release: what follows the version proper.

    ``6.1.0-27-cloud-amd64`` -> ``cloud-amd64`` (Debian), ``6.8.0-45-generic``
    -> ``generic`` (Ubuntu), ``5.14.0-427.13.1.el9_4.x86_64+debug`` -> ``+debug``
    (RHEL), ``5.14.0-427.13.1.el9_4.x86_64`` -> ``""``.  It is the trailing run
    of ``-``-separated words that start with a letter, plus any ``+`` suffix.
    """
    base, plus, extra = release.partition("+")
    words = base.split("-")
    tail: list[str] = []
    while len(words) > 1 and words[-1][:1].isalpha():
        tail.insert(0, words.pop())
    return "-".join(tail) + (plus + extra if plus else "")


def _inside_root(ctx: ProbeContext, path: Path) -> bool:
    """False when ``path`` resolves outside the probed root (absolute symlink)."""
    try:
        return path.resolve().is_relative_to(ctx.root.resolve())
    except (OSError, RuntimeError):
        return False


def _listdir(ctx: ProbeContext, absolute: str) -> list[str]:
    path = ctx.path(absolute)
    if not _inside_root(ctx, path):
        return []
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def installed_kernels(ctx: ProbeContext) -> set[str]:
    """Kernel releases installed under the root (names only, never executed)."""
    releases: set[str] = set()
    for name in _listdir(ctx, BOOT_DIR):
        release = name.removeprefix("vmlinuz-")
        if release == name or "-rescue-" in name or not release[:1].isdigit():
            continue
        releases.add(release)
    for modules in MODULES_DIRS:
        base = ctx.path(modules)
        for name in _listdir(ctx, modules):
            if not name[:1].isdigit():
                continue
            tree = base / name
            if any((tree / marker).exists() for marker in _MODULE_TREE_MARKERS):
                releases.add(name)
    return releases


def newest_kernel(releases: Iterable[str], running: str | None = None) -> str | None:
    """Newest release, among those of the running kernel's flavour if there are any."""
    candidates = list(releases)
    if running is not None:
        flavour = kernel_flavour(running)
        same = [r for r in candidates if kernel_flavour(r) == flavour]
        candidates = same or candidates
    return max(candidates, key=version_key, default=None)


def kernel_fields(ctx: ProbeContext, running: str | None, notes: list[str]) -> dict[str, object]:
    """``kernel_newest_installed`` and ``kernel_reboot_pending`` for the section."""
    releases = installed_kernels(ctx)
    if not releases:
        notes.append(
            "no installed kernel found (/boot/vmlinuz-*, /lib/modules/*): "
            "the kernel is probably supplied by the hypervisor or container host"
        )
        return {}
    newest = newest_kernel(releases, running)
    fields: dict[str, object] = {"kernel_newest_installed": newest}
    if running is None or newest is None:
        return fields
    fields["kernel_reboot_pending"] = compare_versions(running, newest) < 0
    if running not in releases:
        notes.append(f"running kernel {running} is no longer installed")
    return fields


# --- the probe ----------------------------------------------------------------


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
    running = live_fields.get("kernel")
    live_fields.update(kernel_fields(ctx, running if isinstance(running, str) else None, notes))

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
