"""Logging probe: parsers on recorded Debian 12 files, then the probe on fake roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import logging as lg
from agent.probes.base import CommandTimeout, ProbeContext
from agent.report import LoggingSection
from tests.probekit import FakeRunner, ctx_for, fixture_text, make_root, result


def fx(name: str) -> str:
    return fixture_text("logging", name)


RULES_LOADED = 6  # auditctl_l_rules.txt: 4 syscall rules of 43-module-load + 2 watches
FORWARD_TARGETS = ["loghost.binhduong.gov.vn:514", "10.10.0.5", "siem.binhduong.gov.vn:6514"]


def base_files(**extra: str) -> dict[str, str]:
    files = {
        "/etc/systemd/journald.conf": fx("journald.conf.debian12"),
        "/etc/systemd/journal-upload.conf": fx("journal-upload.conf.debian12"),
        "/etc/rsyslog.conf": fx("rsyslog.conf.debian12"),
        "/etc/rsyslog.d/20-ufw.conf": fx("rsyslog.d-20-ufw.conf"),
        "/etc/audit/rules.d/audit.rules": fx("audit.rules.d-debian12"),
        "/etc/audit/audit.rules": fx("audit.rules.generated-debian12"),
    }
    files.update(extra)
    return files


BINS = ("/usr/lib/systemd/systemd-journald", "/usr/sbin/rsyslogd", "/sbin/auditd")


def no_processes() -> set[str]:
    raise AssertionError("processes must not be looked at")


# --- parsers on recorded and documented files -------------------------------------


def test_debian_default_rsyslog_has_no_remote_target() -> None:
    assert lg.parse_rsyslog(fx("rsyslog.conf.debian12")) == []
    assert lg.parse_rsyslog(fx("rsyslog.d-20-ufw.conf")) == []


def test_rsyslog_legacy_and_rainerscript_targets_commented_line_ignored() -> None:
    targets = lg.parse_rsyslog(fx("rsyslog.d-90-forward.conf"))
    assert targets == FORWARD_TARGETS
    assert not any("old-loghost" in t for t in targets)


def test_rsyslog_omrelp_targets() -> None:
    assert lg.parse_rsyslog(fx("rsyslog.d-60-relp.conf")) == [
        "relp.binhduong.gov.vn:2514",
        "10.20.0.9:2514",
    ]


def test_rsyslog_file_actions_and_template_at_signs_are_not_targets() -> None:
    text = (
        'template(name="mail" type="string" string="%msg% to admin@example.vn")\n'
        "mail.*  -/var/log/mail.log\n"
        "*.emerg :omusrmsg:*\n"
        "& @@backup-loghost:10514\n"
    )
    assert lg.parse_rsyslog(text) == ["backup-loghost:10514"]


def test_syslog_ng_default_has_no_target_and_destinations_are_parsed() -> None:
    assert lg.parse_syslog_ng(fx("syslog-ng.conf.debian12")) == []
    # the network() *source* and the commented destination do not count
    assert lg.parse_syslog_ng(fx("syslog-ng.conf.d-remote.conf")) == [
        "loghost.binhduong.gov.vn:6514",
        "10.10.0.7",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("auditctl_l_rules.txt", RULES_LOADED), ("auditctl_l_norules.txt", 0)],
)
def test_auditctl_list_counts(name: str, expected: int) -> None:
    assert lg.parse_auditctl_list(fx(name)) == expected


def test_rule_files_count_rules_not_control_lines() -> None:
    assert lg.count_audit_rules(fx("audit.rules.d-debian12")) == 0  # -D, -b, -f, --backlog…
    assert lg.count_audit_rules(fx("43-module-load.rules")) == 4


# --- the probe: healthy and failing hosts ----------------------------------------


def test_healthy_server(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        base_files(**{"/etc/rsyslog.d/90-forward.conf": fx("rsyslog.d-90-forward.conf")}),
        bins=BINS,
    )
    (root / "var/log/journal").mkdir(parents=True)
    runner = FakeRunner({"auditctl -l": result(fx("auditctl_l_rules.txt"))})
    ctx = ctx_for(root, runner, processes={"rsyslogd", "auditd", "kauditd", "filebeat"})
    section = lg.probe(ctx)
    assert section.status == "ok"
    assert section.journald_storage == "auto"
    assert section.journald_persistent is True
    assert (section.syslog_daemon, section.syslog_running) == ("rsyslog", True)
    assert section.remote_targets == FORWARD_TARGETS
    assert section.log_shippers == ["filebeat"]
    assert (section.auditd_installed, section.auditd_running) == (True, True)
    assert section.audit_rule_count == RULES_LOADED
    assert section.notes == []
    assert runner.ran("auditctl -l")


def test_failing_host_volatile_journal_no_syslog_kauditd_is_not_auditd(tmp_path: Path) -> None:
    files = base_files(
        **{"/etc/systemd/journald.conf.d/50-volatile.conf": fx("journald.conf.d-volatile.conf")}
    )
    del files["/etc/rsyslog.conf"]
    del files["/etc/rsyslog.d/20-ufw.conf"]
    root = make_root(tmp_path, files, bins=("/lib/systemd/systemd-journald", "/usr/sbin/auditd"))
    (root / "var/log/journal").mkdir(parents=True)  # Storage=volatile ignores it
    runner = FakeRunner({"auditctl -l": result(fx("auditctl_l_norules.txt"))})
    section = lg.probe(ctx_for(root, runner, processes={"kauditd", "systemd-journald"}))
    assert section.journald_storage == "volatile"
    assert section.journald_persistent is False
    assert section.syslog_daemon is None and section.syslog_running is False
    assert section.remote_targets == [] and section.log_shippers == []
    assert section.auditd_installed is True and section.auditd_running is False
    assert section.audit_rule_count == 0


def test_no_logging_software_at_all(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/hostname": "pc-01\n"})
    section = lg.probe(ctx_for(root, FakeRunner(), processes={"bash"}))
    assert section.status == "ok"
    assert section.journald_storage is None and section.journald_persistent is False
    assert section.syslog_running is False
    assert section.auditd_installed is False and section.auditd_running is False
    assert section.audit_rule_count is None
    assert any("systemd-journald is not installed" in n for n in section.notes)


# --- journald resolution -------------------------------------------------------------


@pytest.mark.parametrize(
    ("dropins", "journal_dir", "expected"),
    [
        ({}, False, ("auto", False)),
        ({}, True, ("auto", True)),
        ({"/usr/lib/systemd/journald.conf.d/10-a.conf": "persistent"}, False, ("persistent", True)),
        # lexically last file wins, whatever its directory
        (
            {
                "/etc/systemd/journald.conf.d/10-a.conf": "persistent",
                "/usr/lib/systemd/journald.conf.d/20-b.conf": "volatile",
            },
            True,
            ("volatile", False),
        ),
        # same file name: /etc masks /usr/lib
        (
            {
                "/usr/lib/systemd/journald.conf.d/10-a.conf": "volatile",
                "/etc/systemd/journald.conf.d/10-a.conf": "persistent",
            },
            False,
            ("persistent", True),
        ),
        ({"/run/systemd/journald.conf.d/99-x.conf": "none"}, True, ("none", False)),
        ({"/etc/systemd/journald.conf.d/10-a.conf": "sometimes"}, True, ("auto", True)),
    ],
)
def test_journald_storage_resolution(
    tmp_path: Path, dropins: dict[str, str], journal_dir: bool, expected: tuple[str, bool]
) -> None:
    files = {"/etc/systemd/journald.conf": fx("journald.conf.debian12")}
    files |= {path: f"[Journal]\nStorage={value}\n" for path, value in dropins.items()}
    root = make_root(tmp_path, files, bins=("/usr/lib/systemd/systemd-journald",))
    if journal_dir:
        (root / "var/log/journal").mkdir(parents=True)
    section = lg.probe(ctx_for(root, FakeRunner(), processes=set()))
    assert (section.journald_storage, section.journald_persistent) == expected


def test_storage_outside_the_journal_section_is_ignored(tmp_path: Path) -> None:
    files = {"/etc/systemd/journald.conf": "[Other]\nStorage=persistent\n[Journal]\n#Storage=x\n"}
    root = make_root(tmp_path, files, bins=("/usr/lib/systemd/systemd-journald",))
    assert lg.probe(ctx_for(root, FakeRunner(), processes=set())).journald_storage == "auto"


# --- other forwarding sources -------------------------------------------------------


def test_syslog_ng_running_with_network_destination(tmp_path: Path) -> None:
    files = {
        "/etc/syslog-ng/syslog-ng.conf": fx("syslog-ng.conf.debian12"),
        "/etc/syslog-ng/conf.d/remote.conf": fx("syslog-ng.conf.d-remote.conf"),
    }
    root = make_root(tmp_path, files, bins=("/usr/sbin/syslog-ng",))
    section = lg.probe(ctx_for(root, FakeRunner(), processes={"syslog-ng"}))
    assert (section.syslog_daemon, section.syslog_running) == ("syslog-ng", True)
    assert section.remote_targets == ["loghost.binhduong.gov.vn:6514", "10.10.0.7"]


def test_forwarding_of_an_uninstalled_daemon_is_only_a_note(tmp_path: Path) -> None:
    files = {"/etc/rsyslog.d/90-forward.conf": fx("rsyslog.d-90-forward.conf")}
    root = make_root(tmp_path, files)
    section = lg.probe(ctx_for(root, FakeRunner(), processes=set()))
    assert section.remote_targets == []
    assert any("rsyslog is not installed" in n and "10.10.0.5" in n for n in section.notes)


def test_journal_upload_counts_only_when_enabled(tmp_path: Path) -> None:
    dropin = "/etc/systemd/journal-upload.conf.d/central.conf"
    files = base_files(**{dropin: fx("journal-upload.conf.d-central.conf")})
    root = make_root(tmp_path, files, bins=BINS)
    runner = FakeRunner({"auditctl -l": result(fx("auditctl_l_norules.txt"))})
    section = lg.probe(ctx_for(root, runner, processes={"rsyslogd"}))
    assert section.remote_targets == []
    assert any(
        "journal.binhduong.gov.vn:19532" in n and "neither enabled" in n for n in section.notes
    )

    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "systemd-journal-upload.service").symlink_to(
        "/lib/systemd/system/systemd-journal-upload.service"
    )
    section = lg.probe(ctx_for(root, runner, processes={"rsyslogd"}))
    assert section.remote_targets == ["journal.binhduong.gov.vn:19532"]


def test_default_journal_upload_conf_has_no_url(tmp_path: Path) -> None:
    root = make_root(tmp_path, base_files(), bins=BINS)
    ctx = ctx_for(root, FakeRunner({"auditctl -l": result("No rules\n")}), processes=set())
    assert lg.journal_upload_target(ctx) == (None, None)


@pytest.mark.parametrize(
    ("process", "shipper"),
    [
        ("wazuh-logcollector", "wazuh-logcollector"),
        ("fluent-bit", "fluent-bit"),
        ("fluentd", "td-agent"),
        ("splunkd", "splunkd"),
        ("nxlog", "nxlog"),
        ("vector", "vector"),
    ],
)
def test_log_shippers_by_process(tmp_path: Path, process: str, shipper: str) -> None:
    root = make_root(tmp_path, {"/etc/hostname": "x\n"})
    section = lg.probe(ctx_for(root, FakeRunner(), processes={process, "bash"}))
    assert section.log_shippers == [shipper]


# --- degraded observation --------------------------------------------------------------


def _audit_root(tmp_path: Path) -> Path:
    files = base_files(**{"/etc/audit/rules.d/43-module-load.rules": fx("43-module-load.rules")})
    return make_root(tmp_path, files, bins=BINS)


def test_non_root_counts_rule_files_once_with_a_note(tmp_path: Path) -> None:
    root = _audit_root(tmp_path)
    # ForbiddenRunner (the default): a non-root agent must not even try auditctl
    section = lg.probe(ctx_for(root, is_root=False, processes={"auditd", "rsyslogd"}))
    assert section.status == "ok"
    assert section.audit_rule_count == 4  # rules.d only; the generated audit.rules not again
    assert any("loaded audit rules were not read" in n and "needs root" in n for n in section.notes)
    assert section.auditd_running is True


def test_audit_rules_file_used_when_rules_d_is_empty(tmp_path: Path) -> None:
    files = {"/etc/audit/audit.rules": fx("43-module-load.rules") + fx("auditctl_l_rules.txt")}
    root = make_root(tmp_path, files, bins=("/sbin/auditd",))
    section = lg.probe(ctx_for(root, is_root=False, processes=set()))
    assert section.audit_rule_count == 4 + RULES_LOADED
    assert any("/etc/audit/audit.rules" in n for n in section.notes)


def test_not_live_reads_files_only(tmp_path: Path) -> None:
    root = _audit_root(tmp_path)
    (root / "var/log/journal").mkdir(parents=True)
    section = lg.probe(ctx_for(root, live=False, processes=no_processes))
    assert section.status == "ok"
    assert section.journald_persistent is True
    assert section.syslog_daemon == "rsyslog"
    assert section.syslog_running is None and section.auditd_running is None
    assert section.log_shippers == []
    assert section.audit_rule_count == 4
    assert lg.OFFLINE_NOTE in section.notes


def test_auditctl_timeout_falls_back_to_files(tmp_path: Path) -> None:
    root = _audit_root(tmp_path)
    runner = FakeRunner({"auditctl -l": CommandTimeout(["auditctl", "-l"], 10.0)})
    section = lg.probe(ctx_for(root, runner, processes={"auditd"}))
    assert section.audit_rule_count == 4
    assert any("did not finish" in n for n in section.notes)


def test_auditctl_missing_falls_back_to_files(tmp_path: Path) -> None:
    root = _audit_root(tmp_path)
    section = lg.probe(ctx_for(root, FakeRunner(), processes={"auditd"}))
    assert section.audit_rule_count == 4
    assert any("auditctl is not installed" in n for n in section.notes)


@pytest.mark.parametrize(
    ("stderr", "code"),
    [("auditctl_l_userns.stderr", 255), ("auditctl_l_nonroot.stderr", 4)],
)
def test_recorded_auditctl_failures_fall_back_to_files(
    tmp_path: Path, stderr: str, code: int
) -> None:
    root = _audit_root(tmp_path)
    message = fx(stderr).strip()
    runner = FakeRunner({"auditctl -l": result("", returncode=code, stderr=fx(stderr))})
    section = lg.probe(ctx_for(root, runner, processes={"auditd"}))
    assert section.audit_rule_count == 4
    assert any(f"exit {code}: {message}" in n for n in section.notes)


def test_unreadable_rules_leave_count_unknown(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/hostname": "x\n"}, bins=("/sbin/auditd",))
    section = lg.probe(ctx_for(root, is_root=False, processes={"auditd"}))
    assert section.audit_rule_count is None
    assert any("audit rules unknown" in n for n in section.notes)


def test_process_list_failure_keeps_file_facts(tmp_path: Path) -> None:
    def broken() -> set[str]:
        raise RuntimeError("psutil exploded")

    root = _audit_root(tmp_path)
    runner = FakeRunner({"auditctl -l": result(fx("auditctl_l_rules.txt"))})
    section = lg.probe(ctx_for(root, runner, processes=broken))
    assert section.syslog_daemon == "rsyslog" and section.syslog_running is None
    assert section.auditd_running is None
    assert section.audit_rule_count == RULES_LOADED
    assert any("psutil exploded" in n for n in section.notes)


def test_nothing_to_observe_is_unknown(tmp_path: Path) -> None:
    section = lg.probe(ctx_for(tmp_path / "empty", live=False))
    assert section.status == "unknown"
    assert section.reason and "/etc" in section.reason


def test_live_probe_on_this_machine_returns_a_valid_section() -> None:
    section = lg.probe(ProbeContext())
    assert isinstance(section, LoggingSection)
    assert LoggingSection.model_validate(section.model_dump()) == section
