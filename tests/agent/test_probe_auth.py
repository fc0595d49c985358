"""Auth probe: recorded sshd -T outputs and Debian 12 files, then the probe on fake roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import auth
from agent.probes.base import CommandTimeout, ProbeContext
from agent.report import AuthSection
from tests.probekit import FakeRunner, ctx_for, deny, fixture_text, make_root, result

SSHD_T = "sshd -T -C user=root,host=localhost,addr=127.0.0.1"


def fx(*name: str) -> str:
    return fixture_text("auth", *name)


def accounts(variant: str) -> dict[str, str]:
    return {f"/etc/{f}": fx(f"accounts-{variant}", f) for f in ("passwd", "group", "shadow")}


def files(
    *,
    sshd_dropin: str | None = None,
    login_defs: str | None = None,
    pam: str = "common-password.debian12-pwquality",
    variant: str = "debian12",
    **extra: str,
) -> dict[str, str]:
    result_files = {
        "/etc/ssh/sshd_config": fx("sshd_config.debian12"),
        "/etc/login.defs": login_defs if login_defs is not None else fx("login.defs.debian12"),
        "/etc/pam.d/common-password": fx(pam),
        "/etc/security/pwquality.conf": fx("pwquality.conf.debian12"),
        **accounts(variant),
    }
    if sshd_dropin:
        result_files["/etc/ssh/sshd_config.d/50-local.conf"] = fx(sshd_dropin)
    result_files.update(extra)
    return result_files


def hardened_login_defs() -> str:
    text = fx("login.defs.debian12")
    assert "PASS_MAX_DAYS\t99999" in text  # the recorded Debian default
    return text.replace("PASS_MAX_DAYS\t99999", "PASS_MAX_DAYS\t90").replace(
        "PASS_MIN_DAYS\t0", "PASS_MIN_DAYS\t1"
    )


SSHD = ("/usr/sbin/sshd",)


def no_processes() -> set[str]:
    raise AssertionError("processes must not be looked at")


# --- parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sshd_T_debian12_default.txt", ("without-password", "yes", "no")),
        ("sshd_T_hardened.txt", ("no", "no", "no")),
        ("sshd_T_failing.txt", ("yes", "yes", "yes")),
    ],
)
def test_parse_recorded_sshd_t(name: str, expected: tuple[str, str, str]) -> None:
    settings = auth.parse_sshd_t(fx(name))
    assert tuple(settings[k] for k in auth.SSHD_KEYS) == expected
    assert len(settings) > 50  # the whole effective configuration, not just three keys


def test_login_defs_recorded_debian_default() -> None:
    values = auth.parse_login_defs(fx("login.defs.debian12"))
    assert (values["PASS_MAX_DAYS"], values["PASS_MIN_DAYS"]) == ("99999", "0")
    assert "PASS_WARN_AGE" in values


def test_quality_module_on_recorded_pam_stacks() -> None:
    found = auth.find_quality_module(
        [("/etc/pam.d/common-password", fx("common-password.debian12-pwquality"))]
    )
    assert found is not None
    assert (found.module, found.args) == ("pam_pwquality", ("retry=3",))
    unix_only = [("/etc/pam.d/common-password", fx("common-password.debian12-unix-only"))]
    assert auth.find_quality_module(unix_only) is None


def test_commented_or_non_password_lines_do_not_count() -> None:
    text = (
        "#password requisite pam_pwquality.so retry=3\n"
        "auth required pam_cracklib.so\n"
        "password [success=1 default=ignore] pam_unix.so obscure yescrypt\n"
    )
    assert auth.find_quality_module([("x", text)]) is None
    text += "-password requisite /usr/lib/x86_64-linux-gnu/security/pam_passwdqc.so min=8,8,8\n"
    found = auth.find_quality_module([("x", text)])
    assert found is not None and found.module == "pam_passwdqc"


def test_shadow_locked_entries_are_not_empty() -> None:
    assert auth.parse_shadow_empty(fx("accounts-debian12", "shadow")) == []
    assert auth.parse_shadow_empty(fx("accounts-useradd", "shadow")) == ["opsadmin"]
    assert auth.parse_shadow_empty("a:!!:1::\nb:*:1::\nc::1::\nd:!:1::\n") == ["c"]


# --- the probe: healthy and failing hosts ----------------------------------------


def test_healthy_host_as_root(tmp_path: Path) -> None:
    extra = {"/etc/security/pwquality.conf.d/50-agency.conf": fx("pwquality.conf.d-50-agency.conf")}
    root = make_root(tmp_path, files(login_defs=hardened_login_defs(), **extra), bins=SSHD)
    runner = FakeRunner({"sshd -T": result(fx("sshd_T_hardened.txt"))})
    section = auth.probe(ctx_for(root, runner, processes={"sshd", "bash"}))
    assert section.status == "ok"
    assert (section.sshd_installed, section.sshd_running) == (True, True)
    assert section.sshd_config_source == "sshd -T"
    assert section.permit_root_login == "no"
    assert section.password_authentication is False
    assert section.permit_empty_passwords is False
    assert (section.pass_max_days, section.pass_min_days) == (90, 1)
    assert section.password_quality_module == "pam_pwquality"
    assert section.pass_min_len == 12
    assert section.uid0_accounts == ["root"]
    assert section.empty_password_accounts == []
    assert section.admin_group_members == {"sudo": []}
    assert section.login_accounts == ["root", "cloudsdk", "postgres"]
    assert section.notes == []
    assert [" ".join(argv) for argv, _ in runner.calls] == [SSHD_T]


def test_failing_host_as_root(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, files(pam="common-password.debian12-unix-only", variant="useradd"), bins=SSHD
    )
    runner = FakeRunner({"sshd -T": result(fx("sshd_T_failing.txt"))})
    section = auth.probe(ctx_for(root, runner, processes={"sshd"}))
    assert section.permit_root_login == "yes"
    assert section.password_authentication is True
    assert section.permit_empty_passwords is True
    assert (section.pass_max_days, section.pass_min_days) == (99999, 0)
    assert section.password_quality_module is None and section.pass_min_len is None
    assert section.uid0_accounts == ["root", "toor"]
    assert section.empty_password_accounts == ["opsadmin"]
    # opsadmin is in wheel through its primary group only
    assert section.admin_group_members == {"sudo": ["nguyenvana"], "wheel": ["opsadmin"]}
    assert "svc-backup" not in section.login_accounts
    assert {"nguyenvana", "tranthib", "opsadmin", "toor"} <= set(section.login_accounts)


def test_without_password_is_reported_as_prohibit_password(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(), bins=SSHD)
    runner = FakeRunner({"sshd -T": result(fx("sshd_T_debian12_default.txt"))})
    section = auth.probe(ctx_for(root, runner, processes={"sshd"}))
    assert section.permit_root_login == "prohibit-password"
    assert section.password_authentication is True


# --- configuration-file fallback, checked against the recorded sshd -T --------------


def _file_settings(section: AuthSection) -> tuple[str | None, bool | None, bool | None]:
    return (
        section.permit_root_login,
        section.password_authentication,
        section.permit_empty_passwords,
    )


def _recorded(name: str) -> tuple[str, bool, bool]:
    """The three settings as the recorded ``sshd -T`` printed them."""
    s = auth.parse_sshd_t(fx(name))
    renamed = {"without-password": "prohibit-password"}  # OpenSSH 9.2 prints the old name
    return (
        renamed.get(s["permitrootlogin"], s["permitrootlogin"]),
        s["passwordauthentication"] == "yes",
        s["permitemptypasswords"] == "yes",
    )


@pytest.mark.parametrize(
    ("dropin", "recorded"),
    [
        (None, "sshd_T_debian12_default.txt"),  # OpenSSH defaults
        ("sshd_config.d-50-hardening.conf", "sshd_T_hardened.txt"),
        ("sshd_config.d-50-failing.conf", "sshd_T_failing.txt"),
    ],
)
def test_config_files_agree_with_recorded_sshd_t(
    tmp_path: Path, dropin: str | None, recorded: str
) -> None:
    root = make_root(tmp_path, files(sshd_dropin=dropin), bins=SSHD)
    section = auth.probe(ctx_for(root, is_root=False, processes={"sshd"}))
    assert section.sshd_config_source == "config files"
    assert _file_settings(section) == _recorded(recorded)


def test_match_blocks_skipped_like_sshd_t_for_localhost(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/ssh/sshd_config": fx("sshd_config.match-root")}, bins=SSHD)
    section = auth.probe(ctx_for(root, is_root=False, processes=set()))
    recorded = _recorded("sshd_T_match_localhost.txt")
    assert _file_settings(section) == recorded == ("no", False, False)


def test_first_value_wins_across_includes(tmp_path: Path) -> None:
    config = "Include sshd_config.d/*.conf\nPermitRootLogin yes\nPasswordAuthentication yes\n"
    root = make_root(
        tmp_path,
        {
            "/etc/ssh/sshd_config": config,
            "/etc/ssh/sshd_config.d/10-first.conf": "PermitRootLogin no\n",
            "/etc/ssh/sshd_config.d/20-second.conf": "permitrootlogin=yes\n"
            "PasswordAuthentication no\n",
            "/etc/ssh/sshd_config.d/README": "PermitEmptyPasswords yes\n",  # not *.conf
        },
        bins=SSHD,
    )
    section = auth.probe(ctx_for(root, is_root=False, processes=set()))
    assert _file_settings(section) == ("no", False, False)


def test_match_inside_an_included_file_ends_with_that_file(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/ssh/sshd_config": "Include /etc/ssh/extra.conf\nPasswordAuthentication no\n",
            "/etc/ssh/extra.conf": "Match User backup\nPasswordAuthentication yes\n",
        },
        bins=SSHD,
    )
    section = auth.probe(ctx_for(root, is_root=False, processes=set()))
    assert section.password_authentication is False


def test_missing_run_sshd_falls_back_to_files(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(sshd_dropin="sshd_config.d-50-hardening.conf"), bins=SSHD)
    stderr = fx("sshd_T_missing_run_sshd.stderr")
    runner = FakeRunner({"sshd -T": result("", returncode=255, stderr=stderr)})
    section = auth.probe(ctx_for(root, runner, processes={"sshd"}))
    assert section.sshd_config_source == "config files"
    assert _file_settings(section) == ("no", False, False)
    assert any("Missing privilege separation directory: /run/sshd" in n for n in section.notes)


def test_sshd_t_timeout_falls_back_to_files(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(sshd_dropin="sshd_config.d-50-failing.conf"), bins=SSHD)
    runner = FakeRunner({"sshd -T": CommandTimeout(SSHD_T.split(), 10.0)})
    section = auth.probe(ctx_for(root, runner, processes={"sshd"}))
    assert section.sshd_config_source == "config files"
    assert section.permit_root_login == "yes"
    assert any("did not finish" in n for n in section.notes)


def test_sshd_not_installed(tmp_path: Path) -> None:
    root = make_root(tmp_path, files())
    section = auth.probe(ctx_for(root, processes={"bash"}))  # ForbiddenRunner: no sshd -T
    assert section.status == "ok"
    assert (section.sshd_installed, section.sshd_running) == (False, False)
    assert section.sshd_config_source is None
    assert _file_settings(section) == (None, None, None)
    assert section.uid0_accounts == ["root"]


def test_unreadable_sshd_config_leaves_settings_unknown(tmp_path: Path) -> None:
    root = make_root(tmp_path, accounts("debian12"), bins=SSHD)
    section = auth.probe(ctx_for(root, is_root=False, processes={"sshd"}))
    assert section.sshd_installed is True and section.sshd_config_source is None
    assert _file_settings(section) == (None, None, None)
    assert any("sshd settings unknown" in n for n in section.notes)


# --- non-root, offline -----------------------------------------------------------------


def test_non_root(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(variant="useradd"), bins=SSHD)
    section = auth.probe(deny(ctx_for(root, is_root=False, processes={"sshd"}), "/etc/shadow"))
    assert section.status == "ok"
    assert section.sshd_config_source == "config files"
    assert section.empty_password_accounts is None
    assert any("/etc/shadow not read (needs root)" in n for n in section.notes)
    assert any("sshd -T needs root" in n for n in section.notes)
    assert section.uid0_accounts == ["root", "toor"]  # /etc/passwd is world-readable


def test_empty_passwd_field_is_known_without_shadow(tmp_path: Path) -> None:
    passwd = fx("accounts-debian12", "passwd") + "legacy::1500:1500::/home/legacy:/bin/sh\n"
    root = make_root(tmp_path, {"/etc/passwd": passwd})
    section = auth.probe(deny(ctx_for(root, is_root=False, processes=set()), "/etc/shadow"))
    assert section.empty_password_accounts == ["legacy"]


def test_not_live_reads_files_only(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(sshd_dropin="sshd_config.d-50-hardening.conf"), bins=SSHD)
    section = auth.probe(ctx_for(root, live=False, processes=no_processes))
    assert section.sshd_installed is True and section.sshd_running is None
    assert section.sshd_config_source == "config files"
    assert _file_settings(section) == ("no", False, False)
    assert section.empty_password_accounts == []
    assert auth.OFFLINE_NOTE in section.notes


# --- password policy details ---------------------------------------------------------


def test_rhel_stack_with_default_minlen(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/pam.d/system-auth": fx("system-auth.rhel9"),
            "/etc/pam.d/password-auth": fx("password-auth.rhel9"),
            "/etc/security/pwquality.conf": fx("pwquality.conf.debian12"),
            **accounts("debian12"),
        },
    )
    section = auth.probe(ctx_for(root, processes=set()))
    assert section.password_quality_module == "pam_pwquality"
    assert section.pass_min_len == 8  # libpwquality's default, minlen commented out


def test_pwquality_main_file_read_after_dropins(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        files(
            **{
                "/etc/security/pwquality.conf": "minlen = 10\n",
                "/etc/security/pwquality.conf.d/50-agency.conf": fx(
                    "pwquality.conf.d-50-agency.conf"
                ),
            }
        ),
    )
    assert auth.probe(ctx_for(root, processes=set())).pass_min_len == 10


@pytest.mark.parametrize(
    ("line", "module", "minlen"),
    [
        ("password requisite pam_pwquality.so retry=3 minlen=14", "pam_pwquality", 14),
        ("password requisite pam_cracklib.so retry=3", "pam_cracklib", 9),
        ("password requisite pam_cracklib.so minlen=6", "pam_cracklib", 6),
        ("password requisite pam_passwdqc.so min=disabled,24,12,10,9", "pam_passwdqc", 9),
        ("password requisite pam_passwdqc.so enforce=everyone", "pam_passwdqc", 7),
    ],
)
def test_minlen_from_pam_arguments(tmp_path: Path, line: str, module: str, minlen: int) -> None:
    root = make_root(
        tmp_path,
        files(
            **{
                "/etc/pam.d/common-password": line + "\n",
                "/etc/security/pwquality.conf.d/50-agency.conf": "minlen = 20\n",
            }
        ),
    )
    section = auth.probe(ctx_for(root, processes=set()))
    assert (section.password_quality_module, section.pass_min_len) == (module, minlen)


def test_unset_pass_max_days_is_minus_one_with_note(tmp_path: Path) -> None:
    root = make_root(tmp_path, files(login_defs="UMASK 022\nPASS_MIN_DAYS 2\n"))
    section = auth.probe(ctx_for(root, processes=set()))
    assert (section.pass_max_days, section.pass_min_days) == (-1, 2)
    assert any("PASS_MAX_DAYS not set" in n for n in section.notes)


def test_missing_pam_and_login_defs_are_notes(tmp_path: Path) -> None:
    root = make_root(tmp_path, accounts("debian12"))
    section = auth.probe(ctx_for(root, processes=set()))
    assert section.status == "ok"
    assert section.pass_max_days is None and section.password_quality_module is None
    assert section.pam_password_stack is None
    assert any("no PAM password stack found" in n for n in section.notes)
    assert any("/etc/login.defs not readable" in n for n in section.notes)


def test_unreadable_group_is_a_note(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/passwd": fx("accounts-debian12", "passwd")})
    section = auth.probe(ctx_for(root, processes=set()))
    assert section.admin_group_members is None
    assert auth.GROUP_UNREADABLE_NOTE in section.notes


def test_nothing_to_observe_is_unknown(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/hostname": "x\n"})
    section = auth.probe(ctx_for(root, live=False))
    assert section.status == "unknown"
    assert section.reason and "/etc/passwd" in section.reason


def test_live_probe_on_this_machine_returns_a_valid_section() -> None:
    section = auth.probe(ProbeContext())
    assert isinstance(section, AuthSection)
    assert AuthSection.model_validate(section.model_dump()) == section
