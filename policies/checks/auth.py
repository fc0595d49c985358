"""Authentication and access rights.

* Điều 18 khoản 1, gạch đầu dòng 2 — "Áp dụng các công nghệ xác thực":
  ``ssh_no_empty_passwords``, ``ssh_root_login``, ``password_policy``.
* Same bullet — "cơ chế quản lý quyền truy cập": ``single_uid0``.
* Same bullet, Windows: ``rdp_nla`` (Remote Desktop, when on, authenticates
  before a session is created: Network Level Authentication).
* Điều 19 khoản 2 — secure server configuration: ``ssh_password_auth_server``.
* Điều 19 khoản 3 — staff must not install software on their own:
  ``admin_group_small`` (membership of sudo/wheel/admin gives install rights).
"""

from __future__ import annotations

from agent.report import AuthSection
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


def _windows_allowed(ctx: EvalContext, allowed: set[str]) -> set[str]:
    """Windows account names compare case-insensitively, with or without ``DOMAIN\\``.

    The member names of the Administrators group that match the approved list
    (or the built-in administrators) are returned, so they count as allowed.
    """
    approved = {a.lower() for a in allowed} | WINDOWS_BUILTIN_ADMINS
    groups = _facts(ctx).admin_group_members or {}
    return {
        user
        for users in groups.values()
        for user in users
        if user.lower() in approved or user.rsplit("\\", 1)[-1].lower() in approved
    }


def _facts(ctx: EvalContext) -> AuthSection:
    facts = ctx.report.auth
    assert facts is not None  # the engine only calls predicates on observed sections
    return facts


_SOURCE_TEXTS = {
    "sshd -T": ("sshd -T", "sshd -T"),
    "config files": ("tệp cấu hình sshd_config", "the sshd_config files"),
}


def _source(facts: AuthSection) -> dict[str, str | None]:
    """Where the sshd settings came from, for the ``{source_vi}``/``{source_en}`` slots."""
    vi, en = _SOURCE_TEXTS.get(facts.sshd_config_source or "", (None, None))
    return {"source_vi": vi, "source_en": en}


@check("ssh_no_empty_passwords")
def ssh_no_empty_passwords(ctx: EvalContext) -> Outcome:
    facts = _facts(ctx)
    accounts = facts.empty_password_accounts
    source = _source(facts)
    if facts.sshd_installed and facts.permit_empty_passwords:
        return failed("ssh_permits", accounts=accounts, **source)
    if accounts:
        return failed("empty_accounts", accounts=accounts)
    if facts.sshd_installed is None or (
        facts.sshd_installed and facts.permit_empty_passwords is None
    ):
        return undetermined("ssh_unknown")
    if accounts is None:
        if ctx.report.host.os_family == "windows":
            return undetermined("windows_accounts")
        return undetermined("shadow_unreadable")
    if not facts.sshd_installed:
        return passed("no_sshd")
    return passed("ok", **source)


@check("ssh_root_login")
def ssh_root_login(ctx: EvalContext) -> Outcome:
    facts = _facts(ctx)
    if facts.sshd_installed is False:
        return passed("no_sshd")
    value = facts.permit_root_login
    if value is None:
        return undetermined("cannot_tell")
    if value == "yes":
        return failed("allowed", **_source(facts))
    return passed("restricted", value=value, **_source(facts))


@check("ssh_password_auth_server")
def ssh_password_auth_server(ctx: EvalContext) -> Outcome:
    facts = _facts(ctx)
    if facts.sshd_installed is False:
        return passed("no_sshd")
    if facts.password_authentication is None:
        return undetermined("cannot_tell")
    if facts.password_authentication:
        return failed("password_allowed", **_source(facts))
    return passed("keys_only", **_source(facts))


WINDOWS_POLICY_SOURCES = ("secedit", "net accounts")
# Always members of Administrators on Windows (the built-in account, the domain's
# administrators); like root on Linux they are not "ordinary users".
WINDOWS_BUILTIN_ADMINS = frozenset({"administrator", "domain admins"})


def _windows_password_policy(facts: AuthSection, max_allowed: int, min_required: int) -> Outcome:
    """secedit/net accounts values: -1 or 0 days means passwords never expire."""
    values = {
        "max_days": facts.pass_max_days,
        "max_allowed": max_allowed,
        "min_len": facts.pass_min_len,
        "min_required": min_required,
        "complexity": facts.password_complexity,
        "source": facts.password_policy_source,
    }
    max_days, min_len = facts.pass_max_days, facts.pass_min_len
    aging_bad = max_days is not None and not 0 < max_days <= max_allowed
    too_short = min_len is not None and min_len < min_required
    if aging_bad or too_short or facts.password_complexity is False:
        return failed("windows_weak", **values)
    if max_days is None or min_len is None or facts.password_complexity is None:
        return undetermined("windows_cannot_tell", **values)
    return passed("windows_ok", **values)


@check("password_policy")
def password_policy(ctx: EvalContext) -> Outcome:
    facts = _facts(ctx)
    max_allowed = ctx.param("auth", "max_pass_max_days")
    min_required = ctx.param("auth", "min_password_length")
    if facts.password_policy_source in WINDOWS_POLICY_SOURCES:
        return _windows_password_policy(facts, max_allowed, min_required)
    values = {
        "max_days": facts.pass_max_days,
        "max_allowed": max_allowed,
        "module": facts.password_quality_module,
        "min_len": facts.pass_min_len,
        "min_required": min_required,
    }
    max_days = facts.pass_max_days
    aging_bad = max_days is not None and not 0 < max_days <= max_allowed
    no_module = facts.password_quality_module is None and facts.pam_password_stack is not None
    too_short = facts.pass_min_len is not None and facts.pass_min_len < min_required
    if aging_bad or no_module or too_short:
        quality = "no_module" if no_module else "short" if too_short else None
        key = "_".join(k for k in ("aging" if aging_bad else None, quality) if k)
        return failed(key, **values)
    aging_ok = max_days is not None  # and, from above, within 1..max_allowed
    quality_ok = facts.password_quality_module is not None and facts.pass_min_len is not None
    if aging_ok and quality_ok:
        return passed("ok", **values)
    return undetermined("cannot_tell", **values)


@check("rdp_nla")
def rdp_nla(ctx: EvalContext) -> Outcome:
    if ctx.report.host.os_family != "windows":
        return Outcome("not_applicable", "not_windows")
    facts = _facts(ctx)
    if facts.remote_desktop_enabled is None:
        return undetermined("cannot_tell")
    if not facts.remote_desktop_enabled:
        return passed("rdp_off")
    if facts.remote_desktop_nla is None:
        return undetermined("nla_unknown")
    if facts.remote_desktop_nla:
        return passed("nla_on")
    return failed("nla_off")


@check("single_uid0")
def single_uid0(ctx: EvalContext) -> Outcome:
    if ctx.report.host.os_family == "windows":
        return Outcome("not_applicable", "windows")  # no UIDs: see admin_group_small
    accounts = _facts(ctx).uid0_accounts
    if not accounts:
        return undetermined("cannot_tell")
    if accounts == ["root"]:
        return passed("only_root")
    return failed("extra", accounts=[a for a in accounts if a != "root"] or accounts)


@check("admin_group_small")
def admin_group_small(ctx: EvalContext) -> Outcome:
    facts = _facts(ctx)
    allowed = {"root", *ctx.param("auth", "allowed_admins")}
    if ctx.report.host.os_family == "windows":
        allowed |= _windows_allowed(ctx, allowed)
    groups = facts.admin_group_members
    if groups is None:
        return undetermined("cannot_tell")
    if not groups:
        return passed("no_groups")
    members = [f"{user} ({group})" for group, users in groups.items() for user in users]
    if not members:
        return passed("no_members", groups=sorted(groups))
    extra = [
        f"{user} ({group})"
        for group, users in groups.items()
        for user in users
        if user not in allowed
    ]
    if extra:
        return failed("ordinary_users", accounts=extra, allowed=sorted(allowed))
    return passed("only_allowed", accounts=members, groups=sorted(groups))
