"""IDS/IPS probe on fake roots, with recorded Debian 12 file lists and process names."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes import ids
from agent.probes.base import ProbeContext
from agent.report import IdsProduct, IdsSection
from tests.probekit import ctx_for, make_root

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ids"


def fixture_lines(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def present(*paths: str) -> dict[str, str]:
    """Empty files at these paths: for most products the probe only looks for them."""
    return dict.fromkeys(paths, "")


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
    section = ids.probe(ctx_for(make_root(tmp_path), processes={"sshd", "systemd"}))
    assert (section.status, section.products, section.notes) == ("ok", [], [])


def test_fail2ban_running_with_recorded_process_names(tmp_path: Path) -> None:
    root = make_root(tmp_path, present(*fixture_lines("debian12_fail2ban.paths")))
    # Names the agent's psutil snapshot yielded for a real fail2ban-server (Python daemon).
    section = ids.probe(ctx_for(root, processes=set(fixture_lines("process_names_fail2ban.txt"))))
    f2b = products(section)["fail2ban"]
    assert (f2b.kind, f2b.installed, f2b.running) == ("ips", True, True)
    assert "/usr/bin/fail2ban-server present" in f2b.evidence
    assert "/etc/fail2ban/jail.conf present" in f2b.evidence
    assert "process fail2ban-server running" in f2b.evidence


def test_fail2ban_installed_but_stopped(tmp_path: Path) -> None:
    root = make_root(tmp_path, present(*fixture_lines("debian12_fail2ban.paths")))
    f2b = products(ids.probe(ctx_for(root, processes={"python3", "sshd"})))["fail2ban"]
    assert (f2b.installed, f2b.running) == (True, False)


def test_aide_is_not_a_daemon(tmp_path: Path) -> None:
    paths = [*fixture_lines("debian12_aide.paths"), "/etc/aide/aide.conf", "/var/lib/aide/aide.db"]
    root = make_root(tmp_path, present(*paths))
    aide = products(ids.probe(ctx_for(root, processes={"aide"})))["AIDE"]
    assert (aide.kind, aide.installed, aide.running) == ("hids", True, None)
    assert "/var/lib/aide/aide.db present" in aide.evidence


def test_suricata_main_thread_name_counts_as_running(tmp_path: Path) -> None:
    root = make_root(tmp_path, present("/usr/bin/suricata", "/etc/suricata/suricata.yaml"))
    suricata = products(ids.probe(ctx_for(root, processes={"Suricata-Main"})))["Suricata"]
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
    root = make_root(tmp_path, {**present("/usr/bin/suricata"), path: text})
    assert products(ids.probe(ctx_for(root)))["Suricata"].kind == "ips"


def test_suricata_commented_ips_mode_stays_nids(tmp_path: Path) -> None:
    yaml = "af-packet:\n  - interface: eth0\n    #copy-mode: ips\n"
    files = {**present("/usr/bin/suricata"), "/etc/suricata/suricata.yaml": yaml}
    root = make_root(tmp_path, files)
    assert products(ids.probe(ctx_for(root)))["Suricata"].kind == "nids"


def test_wazuh_agent_manager_and_ossec_are_told_apart(tmp_path: Path) -> None:
    root = make_root(tmp_path, present("/var/ossec/bin/wazuh-agentd", "/var/ossec/etc/ossec.conf"))
    found = products(ids.probe(ctx_for(root, processes={"wazuh-agentd", "wazuh-syscheckd"})))
    assert set(found) == {"Wazuh agent"}
    assert found["Wazuh agent"].running is True

    manager = make_root(tmp_path / "m", present("/var/ossec/bin/wazuh-analysisd"))
    assert set(products(ids.probe(ctx_for(manager)))) == {"Wazuh manager"}

    ossec = make_root(tmp_path / "o", present("/var/ossec/bin/ossec-agentd"))
    found = products(ids.probe(ctx_for(ossec, processes={"ossec-syscheckd"})))
    assert set(found) == {"OSSEC"} and found["OSSEC"].running is True


def test_bare_ossec_directory_is_not_a_product(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/var/ossec/etc"])
    assert ids.probe(ctx_for(root)).products == []


def test_zeek_install_dir_and_legacy_bro_process(tmp_path: Path) -> None:
    root = make_root(tmp_path, dirs=["/opt/zeek/bin"])
    zeek = products(ids.probe(ctx_for(root, processes={"bro"})))["Zeek"]
    assert (zeek.kind, zeek.installed, zeek.running) == ("nids", True, True)
    assert "/opt/zeek present" in zeek.evidence


def test_running_without_known_path_counts_as_installed(tmp_path: Path) -> None:
    snort = products(ids.probe(ctx_for(make_root(tmp_path), processes={"snort"})))["Snort"]
    assert (snort.installed, snort.running) == (True, True)
    assert "no binary at a known path" in snort.evidence


def test_offline_root_has_no_running_state(tmp_path: Path) -> None:
    paths = ["/usr/bin/osqueryd", *fixture_lines("debian12_fail2ban.paths")]
    root = make_root(tmp_path, present(*paths))
    section = ids.probe(ctx_for(root, processes={"osqueryd", "fail2ban-server"}, live=False))
    assert ids.OFFLINE_NOTE in section.notes
    found = products(section)
    assert set(found) == {"osquery", "fail2ban"}
    assert all(p.running is None and p.installed for p in found.values())


def test_process_list_failure_keeps_file_facts(tmp_path: Path) -> None:
    def broken() -> set[str]:
        raise PermissionError("hidepid")

    root = make_root(tmp_path, present("/usr/bin/osqueryd"))
    section = ids.probe(ctx_for(root, processes=broken))
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
