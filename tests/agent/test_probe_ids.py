"""IDS/IPS probe on fake roots, with recorded Debian 12 file lists and process names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from agent.probes import ids
from agent.probes.base import CommandResult, CommandRunner, ProbeContext
from agent.report import IdsProduct, IdsSection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ids"


def fixture_lines(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


class ForbiddenRunner(CommandRunner):
    """The IDS probe is file- and process-based: it must not run commands."""

    def run(self, argv, timeout=None) -> CommandResult:  # type: ignore[override]
        raise AssertionError(f"unexpected command {list(argv)}")


def make_root(
    tmp_path: Path,
    files: Iterable[str] = (),
    dirs: Iterable[str] = (),
    contents: dict[str, str] | None = None,
) -> Path:
    root = tmp_path / "root"
    root.mkdir(parents=True, exist_ok=True)
    for path in dirs:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for path in files:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("")
    for path, text in (contents or {}).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def ctx_for(
    root: Path,
    processes: set[str] | Callable[[], set[str]] | None = None,
    live: bool = True,
) -> ProbeContext:
    snapshot = set(processes or ()) if not callable(processes) else set()
    names = processes if callable(processes) else (lambda: snapshot)
    return ProbeContext(root=root, runner=ForbiddenRunner(), live=live, process_names=names)


def products(section: IdsSection) -> dict[str, IdsProduct]:
    found = {p.name: p for p in section.products}
    assert len(found) == len(section.products), "duplicate product"
    return found


# --- detection table -----------------------------------------------------------------


def test_signature_table_is_consistent() -> None:
    names = [s.name for s in ids.SIGNATURES]
    assert len(names) == len(set(names))
    assert {
        "Suricata",
        "Snort",
        "Zeek",
        "Wazuh agent",
        "Wazuh manager",
        "OSSEC",
        "fail2ban",
        "AIDE",
        "osquery",
    } <= set(names)
    for s in ids.SIGNATURES:
        assert s.paths and all(p.startswith("/") for p in s.paths + s.evidence_paths)
        assert s.kind in ("nids", "hids", "ips")
    assert not any("falcon" in n.lower() for n in names)  # listed under antivirus only


# --- the probe -----------------------------------------------------------------------


def test_nothing_installed(tmp_path: Path) -> None:
    section = ids.probe(ctx_for(make_root(tmp_path), {"sshd", "systemd"}))
    assert (section.status, section.products, section.notes) == ("ok", [], [])


def test_fail2ban_running_with_recorded_process_names(tmp_path: Path) -> None:
    root = make_root(tmp_path, fixture_lines("debian12_fail2ban.paths"))
    # Names the agent's psutil snapshot yielded for a real fail2ban-server (Python daemon).
    section = ids.probe(ctx_for(root, set(fixture_lines("process_names_fail2ban.txt"))))
    f2b = products(section)["fail2ban"]
    assert (f2b.kind, f2b.installed, f2b.running) == ("ips", True, True)
    assert "/usr/bin/fail2ban-server present" in f2b.evidence
    assert "/etc/fail2ban/jail.conf present" in f2b.evidence
    assert "process fail2ban-server running" in f2b.evidence


def test_fail2ban_installed_but_stopped(tmp_path: Path) -> None:
    root = make_root(tmp_path, fixture_lines("debian12_fail2ban.paths"))
    f2b = products(ids.probe(ctx_for(root, {"python3", "sshd"})))["fail2ban"]
    assert (f2b.installed, f2b.running) == (True, False)


def test_aide_is_not_a_daemon(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        [*fixture_lines("debian12_aide.paths"), "/etc/aide/aide.conf", "/var/lib/aide/aide.db"],
    )
    aide = products(ids.probe(ctx_for(root, {"aide"})))["AIDE"]
    assert (aide.kind, aide.installed, aide.running) == ("hids", True, None)
    assert "/var/lib/aide/aide.db present" in aide.evidence


def test_suricata_main_thread_name_counts_as_running(tmp_path: Path) -> None:
    root = make_root(tmp_path, ["/usr/bin/suricata", "/etc/suricata/suricata.yaml"])
    suricata = products(ids.probe(ctx_for(root, {"Suricata-Main"})))["Suricata"]
    assert (suricata.kind, suricata.running) == ("nids", True)
    assert "/etc/suricata/suricata.yaml present" in suricata.evidence


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/etc/default/suricata", "RUN=yes\nLISTENMODE=nfqueue\n"),
        ("/etc/suricata/suricata.yaml", "af-packet:\n  - interface: eth0\n    copy-mode: ips\n"),
    ],
)
def test_suricata_inline_mode_is_ips(tmp_path: Path, path: str, text: str) -> None:
    root = make_root(tmp_path, ["/usr/bin/suricata"], contents={path: text})
    assert products(ids.probe(ctx_for(root)))["Suricata"].kind == "ips"


def test_suricata_commented_ips_mode_stays_nids(tmp_path: Path) -> None:
    yaml = "af-packet:\n  - interface: eth0\n    #copy-mode: ips\n"
    root = make_root(tmp_path, ["/usr/bin/suricata"], {}, {"/etc/suricata/suricata.yaml": yaml})
    assert products(ids.probe(ctx_for(root)))["Suricata"].kind == "nids"


def test_wazuh_agent_manager_and_ossec_are_told_apart(tmp_path: Path) -> None:
    root = make_root(tmp_path, ["/var/ossec/bin/wazuh-agentd", "/var/ossec/etc/ossec.conf"])
    found = products(ids.probe(ctx_for(root, {"wazuh-agentd", "wazuh-syscheckd"})))
    assert set(found) == {"Wazuh agent"}
    assert found["Wazuh agent"].running is True

    manager = make_root(tmp_path / "m", ["/var/ossec/bin/wazuh-analysisd"])
    assert set(products(ids.probe(ctx_for(manager)))) == {"Wazuh manager"}

    ossec = make_root(tmp_path / "o", ["/var/ossec/bin/ossec-agentd"])
    found = products(ids.probe(ctx_for(ossec, {"ossec-syscheckd"})))
    assert set(found) == {"OSSEC"} and found["OSSEC"].running is True


def test_bare_ossec_directory_is_not_a_product(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/var/ossec/etc"])
    assert ids.probe(ctx_for(root)).products == []


def test_zeek_install_dir_and_legacy_bro_process(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/opt/zeek/bin"])
    zeek = products(ids.probe(ctx_for(root, {"bro"})))["Zeek"]
    assert (zeek.kind, zeek.installed, zeek.running) == ("nids", True, True)
    assert "/opt/zeek present" in zeek.evidence


def test_running_without_known_path_counts_as_installed(tmp_path: Path) -> None:
    snort = products(ids.probe(ctx_for(make_root(tmp_path), {"snort"})))["Snort"]
    assert (snort.installed, snort.running) == (True, True)
    assert "no binary at a known path" in snort.evidence


def test_offline_root_has_no_running_state(tmp_path: Path) -> None:
    root = make_root(tmp_path, ["/usr/bin/osqueryd", *fixture_lines("debian12_fail2ban.paths")])
    section = ids.probe(ctx_for(root, {"osqueryd", "fail2ban-server"}, live=False))
    assert ids.OFFLINE_NOTE in section.notes
    found = products(section)
    assert set(found) == {"osquery", "fail2ban"}
    assert all(p.running is None and p.installed for p in found.values())


def test_process_list_failure_keeps_file_facts(tmp_path: Path) -> None:
    def broken() -> set[str]:
        raise PermissionError("hidepid")

    root = make_root(tmp_path, ["/usr/bin/osqueryd"])
    section = ids.probe(ctx_for(root, broken))
    assert section.status == "ok"
    assert products(section)["osquery"].running is None
    assert any("process list unavailable" in n for n in section.notes)


# --- this machine ----------------------------------------------------------------------


def test_probe_on_this_machine() -> None:
    section = ids.probe(ProbeContext())
    assert isinstance(section, IdsSection)
    IdsSection.model_validate(section.model_dump())
    assert section.status == "ok"
    for product in section.products:
        assert product.installed and product.evidence
