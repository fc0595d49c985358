"""Authentication and access: SSH server settings, password policy, privileged accounts.

* **sshd**: installed when ``/usr/sbin/sshd`` (or ``/usr/local/sbin/sshd``)
  exists, running when an ``sshd`` process does.  As root on a live host the
  effective settings come from ``sshd -T -C user=root,host=localhost,
  addr=127.0.0.1`` (the connection spec makes sshd apply ``Match`` blocks for a
  root login from the host itself).  ``sshd -T`` needs the host keys (root) and,
  on Debian, ``/run/sshd``; when it cannot run or fails, ``/etc/ssh/sshd_config``
  is parsed instead: ``Include`` globs are expanded in place (relative paths
  against ``/etc/ssh``, matches in lexical order), the first value of a keyword
  wins, lines inside ``Match`` blocks are skipped (``Match all`` returns to the
  global scope; a ``Match`` inside an included file ends with that file), and
  unset keywords take the OpenSSH defaults.  ``without-password`` is the old
  name of ``prohibit-password`` and is reported as such.
* **password aging**: ``PASS_MAX_DAYS`` / ``PASS_MIN_DAYS`` of ``/etc/login.defs``
  (the last assignment wins, as in shadow-utils; unset means ``-1``, no limit,
  and is reported as such with a note).
* **password quality**: the first of pam_pwquality / pam_passwdqc /
  pam_cracklib on a ``password`` line of ``/etc/pam.d/common-password``
  (Debian) or ``/etc/pam.d/system-auth`` / ``password-auth`` (RHEL).  Its
  minimum length is ``minlen=`` on that line, else (pwquality) the
  ``minlen`` of ``/etc/security/pwquality.conf.d/*.conf`` and then
  ``/etc/security/pwquality.conf`` (pwquality.conf(5): the drop-ins are read
  first, the last value wins), else the module default (pwquality 8,
  cracklib 9).  For passwdqc it is the smallest enabled value of ``min=``
  (default ``disabled,24,11,8,7``, i.e. 7).  Length credits are not applied.
* **accounts**: ``/etc/passwd`` (UID 0 accounts; accounts whose shell is not
  nologin/false/sync/halt/shutdown), ``/etc/group`` (members of sudo, wheel
  and admin, including accounts whose primary group it is) and
  ``/etc/shadow`` (an empty hash field is an empty password; ``!``/``*``/``!!``
  are locked).  ``/etc/shadow`` needs root: unreadable, it leaves
  ``empty_password_accounts`` None with a note, unless ``/etc/passwd`` itself
  holds an empty password field.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.report import AuthSection

OFFLINE_NOTE = "live state (sshd process, sshd -T) was not observed: alternate root"

SSHD_BINARIES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_CONFIG_DIR = "/etc/ssh"
SSHD_T_ARGV = ("sshd", "-T", "-C", "user=root,host=localhost,addr=127.0.0.1")
SSHD_T_TIMEOUT = 10.0
SSHD_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
SSHD_KEYS = ("permitrootlogin", "passwordauthentication", "permitemptypasswords")
SSHD_DEFAULTS = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
}

LOGIN_DEFS = "/etc/login.defs"
PAM_FILES = (
    "/etc/pam.d/common-password",
    "/etc/pam.d/system-auth",
    "/etc/pam.d/password-auth",
)
QUALITY_MODULES = ("pam_pwquality", "pam_passwdqc", "pam_cracklib")
PWQUALITY_CONF = "/etc/security/pwquality.conf"
PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
MINLEN_DEFAULTS = {"pam_pwquality": 8, "pam_cracklib": 9}
PASSWDQC_DEFAULT_MIN = "disabled,24,11,8,7"

PASSWD = "/etc/passwd"
GROUP = "/etc/group"
SHADOW = "/etc/shadow"
ADMIN_GROUPS = ("sudo", "wheel", "admin")
GROUP_UNREADABLE_NOTE = f"{GROUP} not readable: admin group members unknown"
NO_LOGIN_SHELLS = frozenset({"nologin", "false", "sync", "halt", "shutdown"})


# --- sshd ------------------------------------------------------------------------


def _norm_root_login(value: str) -> str:
    value = value.lower()
    return "prohibit-password" if value == "without-password" else value


def _yes_no(value: str | None, key: str, notes: list[str]) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("yes", "no"):
        return value.lower() == "yes"
    notes.append(f"sshd: unexpected {key} value '{value}'")
    return None


def parse_sshd_t(stdout: str) -> dict[str, str]:
    """Lower-case keyword -> value of ``sshd -T`` output."""
    settings: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            settings.setdefault(parts[0].lower(), parts[1].strip())
    return settings


_KEYWORD_RE = re.compile(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$")


def _sshd_value(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        return rest[1:end] if end > 0 else rest[1:]
    return rest.split()[0] if rest else ""


def _expand_include(ctx: ProbeContext, pattern: str) -> list[str]:
    absolute = pattern if pattern.startswith("/") else f"{SSHD_CONFIG_DIR}/{pattern}"
    root = str(ctx.root).rstrip("/")
    matches = sorted(glob.glob(glob.escape(root) + absolute))
    return ["/" + str(PurePosixPath(m).relative_to(root or "/")).lstrip("/") for m in matches]


def _read_sshd_file(
    ctx: ProbeContext,
    path: str,
    settings: dict[str, str],
    in_match: bool,
    depth: int,
    notes: list[str],
) -> bool:
    """Apply one configuration file to ``settings`` (first value wins); False if unreadable."""
    text = ctx.read_text(path)
    if text is None:
        return False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _KEYWORD_RE.match(line)
        if not m:
            continue
        keyword, rest = m.group(1).lower(), m.group(2)
        if keyword == "match":
            in_match = rest.strip().lower() != "all"
            continue
        if keyword == "include":
            if depth >= SSHD_INCLUDE_DEPTH:
                notes.append(f"{path}: Include nested too deeply, not followed")
                continue
            for pattern in rest.split():
                for included in _expand_include(ctx, pattern.strip('"')):
                    _read_sshd_file(ctx, included, settings, in_match, depth + 1, notes)
            continue
        if not in_match:
            settings.setdefault(keyword, _sshd_value(rest))
    return True


def parse_sshd_config(ctx: ProbeContext, notes: list[str]) -> dict[str, str] | None:
    """Effective global settings from the configuration files; None if unreadable."""
    settings: dict[str, str] = {}
    if not _read_sshd_file(ctx, SSHD_CONFIG, settings, False, 0, notes):
        return None
    return {**SSHD_DEFAULTS, **settings}


def _sshd_t(ctx: ProbeContext) -> tuple[dict[str, str] | None, str | None]:
    """(settings, why not) from ``sshd -T``."""
    if not ctx.live:
        return None, "alternate root"
    if not ctx.is_root:
        return None, "sshd -T needs root"
    try:
        res = ctx.runner.run(list(SSHD_T_ARGV), timeout=SSHD_T_TIMEOUT)
    except ToolMissing:
        return None, "sshd could not be run"
    except CommandTimeout as exc:
        return None, str(exc)
    settings = parse_sshd_t(res.stdout) if res.ok else {}
    if res.ok and all(k in settings for k in SSHD_KEYS):
        return settings, None
    detail = (res.stderr or res.stdout).strip().splitlines()
    return None, f"sshd -T failed (exit {res.returncode}" + (
        f": {detail[0]})" if detail else ")"
    )


@dataclass
class SshdFacts:
    installed: bool
    running: bool | None = None
    source: Literal["sshd -T", "config files"] | None = None
    permit_root_login: str | None = None
    password_authentication: bool | None = None
    permit_empty_passwords: bool | None = None


def sshd_facts(ctx: ProbeContext, processes: set[str] | None, notes: list[str]) -> SshdFacts:
    running = None if processes is None else "sshd" in processes
    installed = any(ctx.exists(p) for p in SSHD_BINARIES) or bool(running)
    facts = SshdFacts(installed=installed, running=running)
    if not installed:
        return facts
    settings, why_not = _sshd_t(ctx)
    if settings is not None:
        facts.source = "sshd -T"
    else:
        settings = parse_sshd_config(ctx, notes)
        if settings is None:
            notes.append(f"sshd settings unknown: {why_not}; {SSHD_CONFIG} not readable")
            return facts
        facts.source = "config files"
        notes.append(f"sshd settings read from the configuration files ({why_not})")
    facts.permit_root_login = _norm_root_login(settings["permitrootlogin"])
    facts.password_authentication = _yes_no(
        settings.get("passwordauthentication"), "PasswordAuthentication", notes
    )
    facts.permit_empty_passwords = _yes_no(
        settings.get("permitemptypasswords"), "PermitEmptyPasswords", notes
    )
    return facts


# --- login.defs and PAM ----------------------------------------------------------


def parse_login_defs(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            values[parts[0]] = parts[1]  # last assignment wins (shadow-utils getdef)
    return values


def password_aging(ctx: ProbeContext, notes: list[str]) -> tuple[int | None, int | None]:
    text = ctx.read_text(LOGIN_DEFS)
    if text is None:
        notes.append(f"{LOGIN_DEFS} not readable: password aging unknown")
        return None, None
    values = parse_login_defs(text)
    result: list[int | None] = []
    for key in ("PASS_MAX_DAYS", "PASS_MIN_DAYS"):
        raw = values.get(key)
        if raw is None:
            notes.append(f"{LOGIN_DEFS}: {key} not set (-1, no limit)")
            result.append(-1)
            continue
        try:
            result.append(int(raw))
        except ValueError:
            notes.append(f"{LOGIN_DEFS}: {key} has a non-numeric value '{raw}'")
            result.append(None)
    return result[0], result[1]


_PAM_LINE_RE = re.compile(r"^\s*-?password\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


@dataclass(frozen=True)
class PamQuality:
    module: str
    args: tuple[str, ...]
    path: str


def find_quality_module(lines: Iterable[tuple[str, str]]) -> PamQuality | None:
    """The first quality module on a ``password`` line; ``lines`` are (file, text)."""
    for path, text in lines:
        for raw in text.splitlines():
            if raw.lstrip().startswith("#"):
                continue
            m = _PAM_LINE_RE.match(raw)
            if not m:
                continue
            module = PurePosixPath(m.group(2)).name.removesuffix(".so")
            if module in QUALITY_MODULES:
                return PamQuality(module, tuple(m.group(3).split()), path)
    return None


def _arg(args: Iterable[str], name: str) -> str | None:
    value = None
    for arg in args:
        if arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def parse_pwquality_conf(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _pwquality_minlen(ctx: ProbeContext) -> tuple[str | None, str | None]:
    """(minlen, file) from pwquality.conf.d/*.conf then pwquality.conf; last wins."""
    minlen: str | None = None
    source: str | None = None
    try:
        dropins = sorted(p.name for p in ctx.path(PWQUALITY_DIR).glob("*.conf"))
    except OSError:
        dropins = []
    for path in [*(f"{PWQUALITY_DIR}/{n}" for n in dropins), PWQUALITY_CONF]:
        text = ctx.read_text(path)
        if text is not None and "minlen" in (values := parse_pwquality_conf(text)):
            minlen, source = values["minlen"], path
    return minlen, source


def _passwdqc_minlen(value: str) -> int | None:
    lengths = [int(v) for v in value.split(",") if v.strip().isdigit()]
    return min(lengths) if lengths else None


def password_quality(
    ctx: ProbeContext, notes: list[str]
) -> tuple[str | None, int | None, str | None]:
    """(quality module, minimum length, PAM file read) — all None without a PAM stack."""
    texts = [(p, t) for p in PAM_FILES if (t := ctx.read_text(p)) is not None]
    if not texts:
        notes.append("no PAM password stack found (" + ", ".join(PAM_FILES) + ")")
        return None, None, None
    stack = ", ".join(p for p, _ in texts)
    found = find_quality_module(texts)
    if found is None:
        return None, None, stack
    raw = _arg(found.args, "minlen")
    if found.module == "pam_passwdqc":
        minimum = _passwdqc_minlen(_arg(found.args, "min") or PASSWDQC_DEFAULT_MIN)
        return found.module, minimum, stack
    if raw is None and found.module == "pam_pwquality":
        raw, _ = _pwquality_minlen(ctx)
    if raw is None:
        return found.module, MINLEN_DEFAULTS[found.module], stack
    try:
        return found.module, int(raw), stack
    except ValueError:
        notes.append(f"{found.module}: non-numeric minlen '{raw}'")
        return found.module, None, stack

# --- accounts --------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    uid: str
    gid: str
    shell: str


def parse_passwd(text: str) -> list[Account]:
    accounts = []
    for raw in text.splitlines():
        fields = raw.split(":")
        if len(fields) < 7 or not fields[0] or fields[0][0] in "+-#":
            continue
        accounts.append(Account(fields[0], fields[1], fields[2], fields[3], fields[6].strip()))
    return accounts


def parse_shadow_empty(text: str) -> list[str]:
    """Accounts whose password hash field is empty (``!``, ``*``, ``!!`` are locked)."""
    empty = []
    for raw in text.splitlines():
        fields = raw.split(":")
        if len(fields) >= 2 and fields[0] and not fields[0].startswith("#") and fields[1] == "":
            empty.append(fields[0])
    return empty


def admin_groups(group_text: str, accounts: list[Account]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for raw in group_text.splitlines():
        fields = raw.split(":")
        if len(fields) < 4 or fields[0] not in ADMIN_GROUPS:
            continue
        names = [n.strip() for n in fields[3].split(",") if n.strip()]
        names += [a.name for a in accounts if a.gid == fields[2]]
        members[fields[0]] = list(dict.fromkeys(names))
    return members


def has_login_shell(account: Account) -> bool:
    shell = account.shell or "/bin/sh"  # an empty shell field means /bin/sh
    return PurePosixPath(shell).name not in NO_LOGIN_SHELLS


# --- the probe -------------------------------------------------------------------


def _processes(ctx: ProbeContext, notes: list[str]) -> set[str] | None:
    if not ctx.live:
        notes.append(OFFLINE_NOTE)
        return None
    try:
        return ctx.running_processes()
    except Exception as exc:  # psutil trouble: keep the file-based facts
        notes.append(f"process list unavailable, running state unknown ({exc})")
        return None


def probe(ctx: ProbeContext) -> AuthSection:
    notes: list[str] = []
    processes = _processes(ctx, notes)
    ssh = sshd_facts(ctx, processes, notes)
    max_days, min_days = password_aging(ctx, notes)
    module, min_len, pam_stack = password_quality(ctx, notes)

    passwd_text = ctx.read_text(PASSWD)
    accounts = parse_passwd(passwd_text) if passwd_text is not None else []
    if passwd_text is None:
        notes.append(f"{PASSWD} not readable: accounts unknown")
    if passwd_text is None and not ssh.installed and max_days is None and module is None:
        return unknown(
            AuthSection,
            f"nothing to observe: no sshd, {PASSWD} and {LOGIN_DEFS} not readable, no PAM stack",
        )

    empty: list[str] | None
    shadow_text = ctx.read_text(SHADOW)
    passwd_empty = [a.name for a in accounts if a.password == ""]
    if shadow_text is not None:
        empty = list(dict.fromkeys(passwd_empty + parse_shadow_empty(shadow_text)))
    else:
        why = "needs root" if not ctx.is_root else "missing or unreadable"
        notes.append(f"{SHADOW} not read ({why}): empty passwords unknown")
        empty = passwd_empty or None

    group_text = ctx.read_text(GROUP)
    groups: dict[str, list[str]] | None = None
    if group_text is None:
        notes.append(GROUP_UNREADABLE_NOTE)
    else:
        groups = admin_groups(group_text, accounts)

    return AuthSection(
        sshd_installed=ssh.installed,
        sshd_running=ssh.running,
        sshd_config_source=ssh.source,
        permit_root_login=ssh.permit_root_login,
        password_authentication=ssh.password_authentication,
        permit_empty_passwords=ssh.permit_empty_passwords,
        pass_max_days=max_days,
        pass_min_days=min_days,
        pass_min_len=min_len,
        password_quality_module=module,
        pam_password_stack=pam_stack,
        uid0_accounts=[a.name for a in accounts if a.uid == "0"],
        empty_password_accounts=empty,
        admin_group_members=groups,
        login_accounts=[a.name for a in accounts if has_login_shell(a)],
        notes=notes,
    )
