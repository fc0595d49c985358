"""Firewall probe: pure parsers on recorded outputs, then the probe on fake roots/runners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.probes import firewall as fw
from agent.probes.base import CommandTimeout, ProbeContext
from agent.report import FirewallSection
from tests.probekit import FakeRunner, ForbiddenRunner, ctx_for, make_root, result

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firewall"
IPTABLES_NFT_VERSION = "iptables v1.8.9 (nf_tables)"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# Command lines the probe runs, as keys of the kit's FakeRunner.
NFT = "nft -j list ruleset"
IPT_V = "iptables -V"
IPT_S = "iptables -w 5 -S"
IP6T_S = "ip6tables -w 5 -S"
UFW_STATUS = "ufw status verbose"
FWD_STATE = "firewall-cmd --state"


def enable_unit(root: Path, unit: str, target: str = "multi-user.target") -> None:
    wants = root / "etc/systemd/system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit).symlink_to(f"/lib/systemd/system/{unit}")


def backend(section: FirewallSection, name: str):
    matches = [b for b in section.backends if b.name == name]
    assert len(matches) == 1, [b.name for b in section.backends]
    return matches[0]


FIREWALLD_FILES = {
    "/etc/firewalld/firewalld.conf": fixture("firewalld/firewalld.conf"),
    "/usr/lib/firewalld/zones/public.xml": fixture("firewalld/zones/public.xml"),
    "/usr/lib/firewalld/zones/drop.xml": fixture("firewalld/zones/drop.xml"),
}
UFW_FILES_DISABLED = {
    "/etc/ufw/ufw.conf": fixture("ufw/ufw.conf.disabled"),
    "/etc/default/ufw": fixture("ufw/default_ufw"),
}
UFW_FILES_ENABLED = {
    "/etc/ufw/ufw.conf": fixture("ufw/ufw.conf.enabled"),
    "/etc/default/ufw": fixture("ufw/default_ufw"),
}


# --- nftables parser -----------------------------------------------------------------


def test_nft_healthy_ruleset_is_default_drop() -> None:
    b = fw.parse_nft_ruleset(fixture("nft/healthy.json"))
    assert (b.name, b.active, b.default_inbound, b.rule_count) == ("nftables", True, "drop", 6)
    assert "inet filter input: policy drop, 6 rule(s)" in b.evidence


def test_nft_failing_ruleset_accepts_everything() -> None:
    b = fw.parse_nft_ruleset(fixture("nft/failing.json"))
    assert (b.active, b.default_inbound, b.rule_count) == (False, "accept", 0)


def test_nft_empty_ruleset() -> None:
    b = fw.parse_nft_ruleset(fixture("nft/empty.json"))
    assert (b.active, b.default_inbound, b.rule_count) == (False, "accept", 0)
    assert b.evidence[0].startswith("nft -j list ruleset: 0 input base chain(s)")


def test_nft_firewalld_trailing_reject_beats_accept_policy() -> None:
    # firewalld: filter_INPUT has policy accept but ends with an unconditional reject.
    b = fw.parse_nft_ruleset(fixture("nft/firewalld.json"))
    assert (b.active, b.default_inbound, b.rule_count) == (True, "reject", 92)
    assert any("filter_INPUT" in e and "unconditional reject" in e for e in b.evidence)


def test_nft_ufw_ruleset_filters_both_families() -> None:
    b = fw.parse_nft_ruleset(fixture("nft/ufw_active.json"))
    assert (b.active, b.default_inbound, b.rule_count) == (True, "drop", 174)
    assert not any("inbound filtering" in e for e in b.evidence)


def test_nft_ipv4_only_ruleset_names_the_unfiltered_family() -> None:
    b = fw.parse_nft_ruleset(fixture("nft/iptables_nft_healthy.json"))
    assert (b.active, b.default_inbound) == (True, "drop")
    assert "no IPv6 inbound filtering in the nftables ruleset" in b.evidence


@pytest.mark.parametrize("text", ["not json", "[]", '{"foo": 1}', '{"nftables": 3}'])
def test_nft_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        fw.parse_nft_ruleset(text)


def _nft_doc(*items: dict) -> str:
    return json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]})


def _chain(name: str, policy: str, prio: int = 0, family: str = "inet", **extra) -> dict:
    chain = {
        "family": family,
        "table": "t",
        "name": name,
        "handle": 1,
        "type": "filter",
        "hook": "input",
        "prio": prio,
        "policy": policy,
    }
    chain.update(extra)
    return {"chain": chain}


def _rule(chain: str, expr: list, family: str = "inet") -> dict:
    return {"rule": {"family": family, "table": "t", "chain": chain, "handle": 9, "expr": expr}}


def test_nft_unconditional_accept_first_overrides_drop_policy() -> None:
    doc = _nft_doc(_chain("in", "drop"), _rule("in", [{"counter": None}, {"accept": None}]))
    assert fw.parse_nft_ruleset(doc).default_inbound == "accept"


def test_nft_conditional_rule_does_not_count_as_fallthrough() -> None:
    match = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}
    doc = _nft_doc(_chain("in", "accept"), _rule("in", [match, {"drop": None}]))
    b = fw.parse_nft_ruleset(doc)
    assert (b.active, b.default_inbound) == (True, "accept")


def test_nft_first_restrictive_chain_in_priority_order_decides() -> None:
    doc = _nft_doc(
        _chain("late", "drop", prio=10),
        _chain("early", "accept", prio=-10),
        _rule("early", [{"reject": None}]),
    )
    assert fw.parse_nft_ruleset(doc).default_inbound == "reject"


def test_nft_weaker_family_sets_the_default_and_nat_chains_are_ignored() -> None:
    tcp22 = {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "tcp", "field": "dport"}},
            "right": 22,
        }
    }
    doc = _nft_doc(
        _chain("v4", "drop", family="ip"),
        _chain("v6", "accept", family="ip6"),
        _rule("v6", [tcp22, {"accept": None}], family="ip6"),
        _chain("nat_in", "drop", family="ip6", type="nat"),
    )
    b = fw.parse_nft_ruleset(doc)
    assert (b.active, b.default_inbound) == (True, "accept")


def test_nft_iptables_view_uses_only_iptables_tables() -> None:
    view = fw.nft_iptables_view(fixture("nft/ufw_active.json"), IPTABLES_NFT_VERSION)
    assert (view.name, view.active, view.default_inbound, view.rule_count) == (
        "iptables",
        True,
        "drop",
        None,
    )
    assert view.evidence[0] == IPTABLES_NFT_VERSION
    native = fw.nft_iptables_view(fixture("nft/healthy.json"), IPTABLES_NFT_VERSION)
    assert native.active is False


# --- nftables.conf parser --------------------------------------------------------------


def test_nftables_conf_healthy() -> None:
    (chain,) = fw.parse_nftables_conf(fixture("nft/healthy.nft"))
    assert (chain.policy, chain.rules, chain.families) == ("drop", 6, frozenset({"ipv4", "ipv6"}))


def test_nftables_conf_debian_default_has_no_policy() -> None:
    (chain,) = fw.parse_nftables_conf(fixture("nft/nftables.conf.debian-default"))
    assert (chain.policy, chain.rules, chain.filters) == ("accept", 0, False)


def test_nftables_conf_trailing_reject_and_ignored_chains() -> None:
    text = """
table ip nat {
    chain in { type nat hook input priority 100; policy accept; }
}
table inet fw {  # comment
    chain input {
        type filter hook input priority filter + 10; policy accept;
        tcp dport { 22, 443 } accept
        counter packets 0 bytes 0 reject with icmpx type admin-prohibited
        tcp dport 80 accept
    }
    chain helper {
        drop
    }
}
"""
    (chain,) = fw.parse_nftables_conf(text)
    assert chain.label == "inet fw input"
    assert (chain.priority, chain.rules, chain.fallthrough) == (10, 3, "reject")
    assert chain.effective == "reject"


# --- iptables parser -----------------------------------------------------------------


def test_iptables_legacy_healthy() -> None:
    t = fw.parse_iptables_save(fixture("iptables/legacy_S_healthy.txt"))
    assert t.input is not None
    assert (t.input.policy, t.input.rules, t.rule_count) == ("drop", 4, 4)


def test_iptables_legacy_failing() -> None:
    t = fw.parse_iptables_save(fixture("iptables/legacy_S_failing.txt"))
    assert t.input is not None and not t.input.filters
    assert t.rule_count == 0


def test_iptables_save_format_matches_dash_s() -> None:
    saved = fw.parse_iptables_save(fixture("iptables/legacy_save_healthy.txt"))
    dash_s = fw.parse_iptables_save(fixture("iptables/legacy_S_healthy.txt"))
    assert saved == dash_s


def test_iptables_ufw_chains_are_counted() -> None:
    t = fw.parse_iptables_save(fixture("iptables/nft_S_ufw.txt"))
    assert t.input is not None
    assert (t.input.policy, t.input.rules, t.rule_count) == ("drop", 6, 67)


def test_iptables_only_the_filter_table_counts() -> None:
    text = """*nat
:INPUT DROP [0:0]
-A INPUT -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
[5:300] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m comment --comment "catch all" -j REJECT --reject-with icmp-port-unreachable
-A INPUT -j DROP
COMMIT
"""
    t = fw.parse_iptables_save(text)
    assert t.input is not None
    assert (t.input.policy, t.input.rules, t.rule_count) == ("accept", 3, 3)
    assert t.input.fallthrough == "reject"


def test_iptables_match_rule_is_not_a_fallthrough() -> None:
    t = fw.parse_iptables_save("-P INPUT ACCEPT\n-A INPUT -p tcp -j DROP\n")
    assert t.input is not None and t.input.fallthrough is None


def test_iptables_version() -> None:
    assert fw.parse_iptables_version(fixture("iptables/version_nft.txt")) == "nf_tables"
    assert fw.parse_iptables_version(fixture("iptables/version_legacy.txt")) == "legacy"
    assert fw.parse_iptables_version("garbage") is None


def test_iptables_backend_ipv6_gap_is_evidence() -> None:
    b = fw.iptables_backend(
        [
            fw.parse_iptables_save(fixture("iptables/legacy_S_healthy.txt"), "ipv4"),
            fw.parse_iptables_save(fixture("iptables/legacy6_S_failing.txt"), "ipv6"),
        ]
    )
    assert (b.active, b.default_inbound, b.rule_count) == (True, "drop", 4)
    assert "no IPv6 inbound filtering in iptables" in b.evidence


# --- ufw / firewalld parsers -------------------------------------------------------------


def test_ufw_status_active() -> None:
    s = fw.parse_ufw_status(fixture("ufw/status_verbose_active.txt"))
    assert s == fw.UfwStatus(active=True, default_inbound="drop", rule_count=4)


def test_ufw_status_inactive_and_not_root() -> None:
    assert fw.parse_ufw_status(fixture("ufw/status_verbose_inactive.txt")).active is False
    assert fw.parse_ufw_status(fixture("nonroot/ufw.stdout")).active is None


def test_ufw_config_files() -> None:
    assert fw.parse_ufw_conf(fixture("ufw/ufw.conf.enabled")) is True
    assert fw.parse_ufw_conf(fixture("ufw/ufw.conf.disabled")) is False
    assert fw.parse_ufw_conf("# nothing\n") is None
    assert fw.parse_ufw_default(fixture("ufw/default_ufw")) == "drop"
    assert fw.parse_ufw_default('DEFAULT_INPUT_POLICY="ACCEPT"\n') == "accept"


@pytest.mark.parametrize(
    ("zone", "target"),
    [("public", "reject"), ("drop", "drop"), ("block", "reject"), ("trusted", "accept")],
)
def test_firewalld_zone_targets(zone: str, target: str) -> None:
    assert fw.parse_firewalld_zone_target(fixture(f"firewalld/zones/{zone}.xml")) == target


def test_firewalld_conf_and_bad_zone() -> None:
    assert fw.parse_firewalld_conf(fixture("firewalld/firewalld.conf")) == "public"
    assert fw.parse_firewalld_conf("DefaultZone=drop\n") == "drop"
    assert fw.parse_firewalld_conf("") == "public"
    with pytest.raises(ValueError):
        fw.parse_firewalld_zone_target("<zone")


# --- live probe on fake roots ----------------------------------------------------------


def test_probe_healthy_nft_with_iptables_nft_is_not_double_counted(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/nft", "/usr/sbin/iptables"])
    runner = FakeRunner(
        {
            NFT: result(fixture("nft/ufw_active.json")),
            IPT_V: result(fixture("iptables/version_nft.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert section.status == "ok"
    assert (section.active, section.default_inbound) == (True, "drop")
    nft = backend(section, "nftables")
    ipt = backend(section, "iptables")
    assert nft.rule_count == 174 and ipt.rule_count is None
    assert any("view of the nftables ruleset" in e for e in ipt.evidence)
    assert not runner.ran(IPT_S)  # the same rules are not read twice


def test_probe_failing_nft(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/nft"])
    runner = FakeRunner({NFT: result(fixture("nft/failing.json"))})
    section = fw.probe(ctx_for(root, runner))
    assert (section.status, section.active, section.default_inbound) == ("ok", False, "accept")


def test_probe_firewalld_running(tmp_path: Path) -> None:
    root = make_root(tmp_path, FIREWALLD_FILES, bins=["/usr/sbin/nft", "/usr/bin/firewall-cmd"])
    runner = FakeRunner(
        {
            NFT: result(fixture("nft/firewalld.json")),
            FWD_STATE: result(fixture("firewalld/state_running.stdout")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert (section.status, section.active, section.default_inbound) == ("ok", True, "reject")
    fwd = backend(section, "firewalld")
    assert (fwd.active, fwd.default_inbound) == (True, "reject")
    assert any("public.xml" in e for e in fwd.evidence)


def test_probe_firewalld_zone_override_in_etc(tmp_path: Path) -> None:
    files = {
        **FIREWALLD_FILES,
        "/etc/firewalld/firewalld.conf": "DefaultZone=public\n",
        "/etc/firewalld/zones/public.xml": fixture("firewalld/zones/drop.xml"),
    }
    root = make_root(tmp_path, files, bins=["/usr/bin/firewall-cmd"])
    runner = FakeRunner({FWD_STATE: result("running\n")})
    section = fw.probe(ctx_for(root, runner, is_root=False))
    # No kernel ruleset tool: the summary comes from firewalld itself.
    assert (section.status, section.active, section.default_inbound) == ("ok", True, "drop")


def test_probe_firewalld_not_running(tmp_path: Path) -> None:
    root = make_root(tmp_path, FIREWALLD_FILES, bins=["/usr/sbin/nft", "/usr/bin/firewall-cmd"])
    rc = int(fixture("firewalld/state_not_running.rc"))
    runner = FakeRunner(
        {
            NFT: result(fixture("nft/empty.json")),
            FWD_STATE: result("", rc, fixture("firewalld/state_not_running.stderr")),
        }
    )
    section = fw.probe(ctx_for(root, runner, processes={"firewalld"}))
    fwd = backend(section, "firewalld")
    assert (fwd.active, fwd.default_inbound) == (False, None)
    assert (section.active, section.default_inbound) == (False, "accept")


def test_probe_firewalld_falls_back_to_process(tmp_path: Path) -> None:
    root = make_root(tmp_path, FIREWALLD_FILES, bins=["/usr/bin/firewall-cmd"])
    dbus_error = "Error: DBUS_ERROR: Failed to connect to socket /run/dbus/system_bus_socket"
    runner = FakeRunner({FWD_STATE: result("", 36, dbus_error)})
    assert backend(fw.probe(ctx_for(root, runner, processes={"firewalld"})), "firewalld").active
    down = fw.probe(ctx_for(root, runner, processes={"sshd"}))
    assert backend(down, "firewalld").active is False


def test_probe_legacy_iptables(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/iptables"])
    runner = FakeRunner(
        {
            IPT_V: result(fixture("iptables/version_legacy.txt")),
            IPT_S: result(fixture("iptables/legacy_S_healthy.txt")),
            IP6T_S: result(fixture("iptables/legacy6_S_failing.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert (section.status, section.active, section.default_inbound) == ("ok", True, "drop")
    ipt = backend(section, "iptables")
    assert ipt.rule_count == 4
    assert "iptables v1.8.9 (legacy)" in ipt.evidence


def test_probe_legacy_iptables_failing(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/iptables"])
    runner = FakeRunner(
        {
            IPT_V: result(fixture("iptables/version_legacy.txt")),
            IPT_S: result(fixture("iptables/legacy_S_failing.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert (section.status, section.active, section.default_inbound) == ("ok", False, "accept")
    assert any("ip6tables" in n for n in section.notes)  # ip6tables missing is a note


def test_probe_ufw_as_root(tmp_path: Path) -> None:
    root = make_root(tmp_path, UFW_FILES_ENABLED, bins=["/usr/sbin/nft", "/usr/sbin/ufw"])
    runner = FakeRunner(
        {
            NFT: result(fixture("nft/ufw_active.json")),
            UFW_STATUS: result(fixture("ufw/status_verbose_active.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    ufw = backend(section, "ufw")
    assert (ufw.active, ufw.default_inbound, ufw.rule_count) == (True, "drop", 4)
    assert (section.active, section.default_inbound) == (True, "drop")


def test_probe_kernel_ruleset_wins_over_stale_ufw_config(tmp_path: Path) -> None:
    root = make_root(tmp_path, UFW_FILES_ENABLED, bins=["/usr/sbin/nft", "/usr/sbin/ufw"])
    runner = FakeRunner(
        {
            NFT: result(fixture("nft/empty.json")),
            UFW_STATUS: result(fixture("ufw/status_verbose_inactive.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert backend(section, "ufw").active is False
    assert (section.active, section.default_inbound) == (False, "accept")


def test_probe_no_backend_installed(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    section = fw.probe(ctx_for(root, ForbiddenRunner(), is_root=False))
    assert (section.status, section.active, section.backends) == ("ok", False, [])


def test_probe_tool_missing(tmp_path: Path) -> None:
    # Binaries under the root, but the runner cannot find them.
    root = make_root(tmp_path, bins=["/usr/sbin/nft", "/usr/sbin/iptables"])
    section = fw.probe(ctx_for(root, FakeRunner()))
    assert section.status == "unknown"
    assert section.reason == fw.UNREADABLE_REASON
    assert any("'nft' is not installed" in n for n in section.notes)
    assert backend(section, "nftables").active is None


def test_probe_non_root_never_claims_no_firewall(tmp_path: Path) -> None:
    root = make_root(
        tmp_path, UFW_FILES_DISABLED, bins=["/usr/sbin/nft", "/usr/sbin/iptables", "/usr/sbin/ufw"]
    )
    runner = FakeRunner({IPT_V: result(fixture("iptables/version_nft.txt"))})
    section = fw.probe(ctx_for(root, runner, is_root=False))
    assert section.status == "unknown"
    assert section.reason == fw.NEEDS_ROOT_REASON
    assert section.active is None
    assert not runner.ran(NFT) and not runner.ran(IPT_S)
    assert not runner.ran(UFW_STATUS)
    assert backend(section, "ufw").active is False


def test_probe_non_root_with_enabled_ufw(tmp_path: Path) -> None:
    root = make_root(tmp_path, UFW_FILES_ENABLED, bins=["/usr/sbin/nft", "/usr/sbin/ufw"])
    section = fw.probe(ctx_for(root, FakeRunner(), is_root=False))
    assert (section.status, section.active, section.default_inbound) == ("ok", True, "drop")
    assert any("summary from ufw" in n for n in section.notes)


def test_probe_nft_permission_denied(tmp_path: Path) -> None:
    # Root without CAP_NET_ADMIN (a container): nft fails like an unprivileged caller.
    root = make_root(tmp_path, bins=["/usr/sbin/nft"])
    runner = FakeRunner({NFT: result("", 1, fixture("nonroot/nft.stderr"))})
    section = fw.probe(ctx_for(root, runner))
    assert section.status == "unknown"
    assert any("Operation not permitted" in n for n in section.notes)


def test_probe_timeouts(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/nft", "/usr/sbin/iptables"])
    runner = FakeRunner(
        {
            NFT: CommandTimeout(NFT.split(), 10),
            IPT_V: result(fixture("iptables/version_nft.txt")),
            IPT_S: CommandTimeout(IPT_S.split(), 10),
            IP6T_S: CommandTimeout(IP6T_S.split(), 10),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert section.status == "unknown"
    assert sum("did not finish" in n for n in section.notes) == 3


def test_probe_nft_timeout_falls_back_to_iptables_nft(tmp_path: Path) -> None:
    root = make_root(tmp_path, bins=["/usr/sbin/nft", "/usr/sbin/iptables"])
    runner = FakeRunner(
        {
            NFT: CommandTimeout(NFT.split(), 10),
            IPT_V: result(fixture("iptables/version_nft.txt")),
            IPT_S: result(fixture("iptables/nft_S_healthy.txt")),
        }
    )
    section = fw.probe(ctx_for(root, runner))
    assert (section.status, section.active, section.default_inbound) == ("ok", True, "drop")
    assert backend(section, "iptables").rule_count == 3
    assert any("only the iptables-nft tables" in n for n in section.notes)


# --- offline (alternate root) ------------------------------------------------------------


def test_offline_uses_files_only(tmp_path: Path) -> None:
    files = {
        **UFW_FILES_DISABLED,
        **FIREWALLD_FILES,
        "/etc/nftables.conf": fixture("nft/healthy.nft"),
    }
    root = make_root(
        tmp_path, files, bins=["/usr/sbin/nft", "/usr/sbin/ufw", "/usr/bin/firewall-cmd"]
    )
    enable_unit(root, "nftables.service", "sysinit.target")
    section = fw.probe(ctx_for(root, ForbiddenRunner(), live=False, processes={"firewalld"}))
    assert section.status == "ok"
    assert fw.OFFLINE_NOTE in section.notes
    assert (section.active, section.default_inbound) == (True, "drop")
    assert backend(section, "nftables").rule_count == 6
    assert backend(section, "ufw").active is False
    assert backend(section, "firewalld").active is False  # unit not enabled; process ignored


def test_offline_nothing_enabled(tmp_path: Path) -> None:
    files = {
        **UFW_FILES_DISABLED,
        "/etc/nftables.conf": fixture("nft/nftables.conf.debian-default"),
    }
    root = make_root(tmp_path, files, bins=["/usr/sbin/nft", "/usr/sbin/ufw"])
    enable_unit(root, "ufw.service")
    section = fw.probe(ctx_for(root, ForbiddenRunner(), live=False))
    assert (section.status, section.active, section.default_inbound) == ("ok", False, None)


def test_offline_saved_iptables_and_firewalld(tmp_path: Path) -> None:
    files = {
        "/etc/sysconfig/iptables": fixture("iptables/legacy_save_healthy.txt"),
        **FIREWALLD_FILES,
    }
    root = make_root(tmp_path, files, bins=["/usr/sbin/iptables", "/usr/sbin/firewalld"])
    enable_unit(root, "iptables.service")
    enable_unit(root, "firewalld.service")
    section = fw.probe(ctx_for(root, ForbiddenRunner(), live=False))
    assert (
        backend(section, "iptables").default_inbound,
        backend(section, "firewalld").default_inbound,
    ) == (
        "drop",
        "reject",
    )
    assert (section.active, section.default_inbound) == (True, "drop")


def test_offline_saved_iptables_not_enabled(tmp_path: Path) -> None:
    files = {"/etc/sysconfig/iptables": fixture("iptables/legacy_save_healthy.txt")}
    root = make_root(tmp_path, files, bins=["/usr/sbin/iptables"], dirs=["/etc/systemd/system"])
    section = fw.probe(ctx_for(root, ForbiddenRunner(), live=False))
    assert (section.active, backend(section, "iptables").active) == (False, False)


# --- this machine --------------------------------------------------------------------------


def test_probe_on_this_machine() -> None:
    section = fw.probe(ProbeContext())
    assert isinstance(section, FirewallSection)
    FirewallSection.model_validate(section.model_dump())
    assert section.status in ("ok", "unknown")
    if section.status == "unknown":
        assert section.reason
