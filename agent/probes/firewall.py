"""Host firewall: which backends exist, whether inbound traffic is filtered, default policy.

Backends, each detected by its binary under the root:

* **nftables** (``nft``).  ``nft -j list ruleset`` needs root (netlink refuses
  an unprivileged caller).  Only *base chains* of ``type filter`` with
  ``hook input`` in the families ``ip``, ``ip6`` and ``inet`` matter.  A chain
  filters when its policy is not ``accept`` or it holds rules.  Its effective
  default is the first *unconditional* ``accept``/``drop``/``reject`` rule in it
  (firewalld ends ``filter_INPUT`` with ``reject`` under ``policy accept``), else
  its policy.  ``rule_count`` counts every ``rule`` object of the ruleset.
* **iptables** (``iptables``).  ``iptables -V`` says ``(nf_tables)`` or
  ``(legacy)``.  iptables-nft rules are nftables rules: when the nft ruleset was
  read, the iptables backend is reported as a *view* of it (its ``ip``/``ip6``
  ``filter`` tables; ``rule_count`` None, the rules are counted under nftables)
  and the summary is derived once, from nftables.  Otherwise ``iptables -S`` and
  ``ip6tables -S`` (root) are parsed: ``-P INPUT DROP`` and the ``-A`` rules.
* **ufw** (``/usr/sbin/ufw``).  ``ENABLED=yes`` in ``/etc/ufw/ufw.conf`` and
  ``DEFAULT_INPUT_POLICY`` in ``/etc/default/ufw`` are readable without root;
  with root ``ufw status verbose`` gives the live ``Status:`` and ``Default:``.
* **firewalld** (``firewall-cmd`` / ``firewalld``).  ``firewall-cmd --state``
  prints ``running`` (exit 0) or ``not running`` (exit 252); otherwise a
  ``firewalld`` process counts.  The default inbound policy is the target of the
  default zone (``DefaultZone`` in ``firewalld.conf``; the zone XML from
  ``/etc/firewalld/zones`` overriding ``/usr/lib/firewalld/zones``); the target
  ``default`` rejects unmatched traffic.  Interfaces bound to another zone are
  not considered.

How the summary is derived (a deliberate simplification):

* Inside one ruleset a packet crosses every input base chain of its family in
  priority order, and a drop is final while an accept only ends that chain.  So
  per address family (IPv4: ``ip`` + ``inet``; IPv6: ``ip6`` + ``inet``) the
  effective default is the first non-``accept`` default in priority order.
* A ruleset's default is the *least* restrictive of its filtered families; a
  family with no filtering chain at all is left out of that and named in the
  evidence (IPv6 is often simply unused).
* Kernel rulesets (nftables, legacy iptables) stack: the summary takes the
  *most* restrictive default among the active ones.  ufw and firewalld are
  front-ends writing into those rulesets, so they only feed the summary when the
  kernel ruleset could not be read (non-root).  A non-root agent that sees no
  active front-end never claims "no firewall": the section is ``unknown``.

When ``ctx.live`` is False (auditing a mounted root) only configuration files
are read: ``/etc/nftables.conf``, ``/etc/sysconfig/iptables`` and
``/etc/iptables/rules.v4`` (and their IPv6 twins), ufw's two files, firewalld's
configuration, plus whether the systemd unit loading them is enabled.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.probes import unknown
from agent.probes.base import CommandResult, CommandTimeout, ProbeContext, ToolMissing
from agent.report import FirewallBackend, FirewallSection, InboundPolicy

NEEDS_ROOT_REASON = "reading the nftables/iptables ruleset needs root"
UNREADABLE_REASON = "the nftables/iptables ruleset could not be read"
OFFLINE_NOTE = "live state was not observed (alternate root): facts come from configuration files"

NFT_PATHS = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft")
IPTABLES_PATHS = ("/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables")
UFW_PATHS = ("/usr/sbin/ufw", "/sbin/ufw", "/usr/bin/ufw")
FIREWALLD_PATHS = ("/usr/bin/firewall-cmd", "/usr/sbin/firewalld", "/usr/bin/firewalld")

UFW_CONF = "/etc/ufw/ufw.conf"
UFW_DEFAULTS = "/etc/default/ufw"
FIREWALLD_CONF = "/etc/firewalld/firewalld.conf"
FIREWALLD_ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")
FIREWALLD_DEFAULT_ZONE = "public"  # firewalld's built-in fallback
NFTABLES_CONFS = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
IPTABLES_SAVE_FILES: tuple[tuple[str, Literal["ipv4", "ipv6"], tuple[str, ...]], ...] = (
    ("/etc/sysconfig/iptables", "ipv4", ("iptables.service",)),
    ("/etc/sysconfig/ip6tables", "ipv6", ("ip6tables.service",)),
    ("/etc/iptables/rules.v4", "ipv4", ("netfilter-persistent.service", "iptables.service")),
    ("/etc/iptables/rules.v6", "ipv6", ("netfilter-persistent.service", "ip6tables.service")),
)
SYSTEMD_UNIT_DIR = "/etc/systemd/system"
LEGACY_TABLES = "/proc/net/ip_tables_names"
_IPTABLES_TOOLS: tuple[tuple[str, Literal["ipv4", "ipv6"]], ...] = (
    ("iptables", "ipv4"),
    ("ip6tables", "ipv6"),
)

FIREWALLD_NOT_RUNNING_RC = 252
NFT_FAMILIES: dict[str, frozenset[str]] = {
    "ip": frozenset({"ipv4"}),
    "ip6": frozenset({"ipv6"}),
    "inet": frozenset({"ipv4", "ipv6"}),
}
ADDRESS_FAMILIES = ("ipv4", "ipv6")
FAMILY_LABELS = {"ipv4": "IPv4", "ipv6": "IPv6"}

# Lower is more restrictive.
_RANK: dict[str, int] = {"drop": 0, "reject": 1, "accept": 2}
_VERDICTS: dict[str, InboundPolicy] = {"drop": "drop", "reject": "reject", "accept": "accept"}
# nft statements that neither match nor end the rule.
_NFT_PASSIVE = frozenset({"counter", "log"})
# nftables named priorities (nft(8) "PRIORITY").
_NFT_PRIORITIES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}


# --- pure model ------------------------------------------------------------------


@dataclass(frozen=True)
class InputChain:
    """A chain inbound packets cross: an nft input base chain or iptables ``INPUT``."""

    label: str
    families: frozenset[str]
    policy: InboundPolicy = "accept"
    rules: int = 0
    priority: int = 0
    fallthrough: InboundPolicy | None = None  # first unconditional terminal verdict
    table: tuple[str, str] | None = None  # (nft family, table name)

    @property
    def effective(self) -> InboundPolicy:
        return self.fallthrough or self.policy

    @property
    def filters(self) -> bool:
        return self.policy != "accept" or self.rules > 0

    def describe(self) -> str:
        text = f"{self.label}: policy {self.policy}, {self.rules} rule(s)"
        if self.fallthrough:
            text += f", unconditional {self.fallthrough} rule"
        return text


@dataclass(frozen=True)
class InputSummary:
    active: bool
    default_inbound: InboundPolicy
    unfiltered: tuple[str, ...] = ()  # address families left unfiltered while others are

    def evidence(self, what: str) -> list[str]:
        return [f"no {FAMILY_LABELS[f]} inbound filtering in {what}" for f in self.unfiltered]


def most_restrictive(policies: Iterable[InboundPolicy | None]) -> InboundPolicy | None:
    known = [p for p in policies if p is not None]
    return min(known, key=_RANK.__getitem__) if known else None


def least_restrictive(policies: Iterable[InboundPolicy | None]) -> InboundPolicy | None:
    known = [p for p in policies if p is not None]
    return max(known, key=_RANK.__getitem__) if known else None


def summarise_input_chains(chains: Sequence[InputChain]) -> InputSummary:
    """Effective inbound state of one ruleset (see the module docstring)."""
    per_family: dict[str, InboundPolicy] = {}
    for family in ADDRESS_FAMILIES:
        crossing = sorted(
            (c for c in chains if family in c.families and c.filters), key=lambda c: c.priority
        )
        if crossing:
            per_family[family] = next(
                (c.effective for c in crossing if c.effective != "accept"), "accept"
            )
    if not per_family:
        return InputSummary(active=False, default_inbound="accept")
    default = least_restrictive(per_family.values()) or "accept"
    unfiltered = tuple(f for f in ADDRESS_FAMILIES if f not in per_family)
    return InputSummary(active=True, default_inbound=default, unfiltered=unfiltered)


# --- nftables ------------------------------------------------------------------


def _nft_priority(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _text_priority(value)
    return 0


def _nft_rule_verdict(expr: Any) -> tuple[bool, str | None]:
    """(unconditional, terminal verdict) of one rule's expression list."""
    if not isinstance(expr, list) or not expr:
        return False, None
    *head, last = expr
    if not all(isinstance(s, dict) and set(s) <= _NFT_PASSIVE for s in head):
        return False, None
    if not isinstance(last, dict) or len(last) != 1:
        return False, None
    (key,) = last
    return True, key


def _load_nft(json_text: str) -> tuple[list[InputChain], int]:
    """Input base chains and the total rule count of ``nft -j list ruleset`` output."""
    data = json.loads(json_text)
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("not an 'nft -j list ruleset' document")
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Any]] = {}
    rule_count = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("chain"), dict):
            c = item["chain"]
            chains[(str(c.get("family")), str(c.get("table")), str(c.get("name")))] = c
        elif isinstance(item.get("rule"), dict):
            r = item["rule"]
            rule_count += 1
            key = (str(r.get("family")), str(r.get("table")), str(r.get("chain")))
            rules.setdefault(key, []).append(r.get("expr"))
    result: list[InputChain] = []
    for key, c in chains.items():
        family, table, name = key
        if c.get("hook") != "input" or c.get("type", "filter") != "filter":
            continue
        if family not in NFT_FAMILIES:
            continue
        fallthrough: InboundPolicy | None = None
        for expr in rules.get(key, []):
            unconditional, verdict = _nft_rule_verdict(expr)
            if not unconditional:
                continue
            if verdict in _VERDICTS:
                fallthrough = _VERDICTS[verdict]
                break
            if verdict in ("goto", "return"):
                break  # control never comes back to the rest of this chain
        result.append(
            InputChain(
                label=f"{family} {table} {name}",
                families=NFT_FAMILIES[family],
                policy=_VERDICTS.get(str(c.get("policy", "accept")), "accept"),
                rules=len(rules.get(key, [])),
                priority=_nft_priority(c.get("prio", 0)),
                fallthrough=fallthrough,
                table=(family, table),
            )
        )
    return result, rule_count


def parse_nft_ruleset(json_text: str) -> FirewallBackend:
    """The nftables backend from ``nft -j list ruleset`` output.  Raises ValueError."""
    chains, rule_count = _load_nft(json_text)
    summary = summarise_input_chains(chains)
    evidence = [f"nft -j list ruleset: {len(chains)} input base chain(s), {rule_count} rule(s)"]
    evidence += [c.describe() for c in chains]
    evidence += summary.evidence("the nftables ruleset")
    return FirewallBackend(
        name="nftables",
        installed=True,
        active=summary.active,
        default_inbound=summary.default_inbound,
        rule_count=rule_count,
        evidence=evidence,
    )


def nft_iptables_view(json_text: str, version: str) -> FirewallBackend:
    """iptables-nft seen through the nft ruleset: its ``ip``/``ip6`` ``filter`` tables."""
    chains, _ = _load_nft(json_text)
    mine = [c for c in chains if c.table in (("ip", "filter"), ("ip6", "filter"))]
    summary = summarise_input_chains(mine)
    evidence = [
        version,
        "iptables-nft: a view of the nftables ruleset; its rules are counted under nftables",
    ]
    evidence += [c.describe() for c in mine]
    evidence += summary.evidence("the iptables tables")
    return FirewallBackend(
        name="iptables",
        installed=True,
        active=summary.active,
        default_inbound=summary.default_inbound,
        rule_count=None,
        evidence=evidence,
    )


def _text_priority(text: str) -> int:
    """``filter``, ``filter + 10``, ``-150`` -> an integer priority."""
    m = re.fullmatch(r"\s*([a-z]+|-?\d+)\s*(?:([+-])\s*(\d+))?\s*", text)
    if not m:
        return 0
    base = m.group(1)
    value = int(base) if base.lstrip("-").isdigit() else _NFT_PRIORITIES.get(base, 0)
    if m.group(2):
        value += int(m.group(3)) * (1 if m.group(2) == "+" else -1)
    return value


_TABLE_RE = re.compile(r"(?:add\s+)?table\s+(?:(ip6?|inet|arp|bridge|netdev)\s+)?(\S+)\s*\{")
_CHAIN_RE = re.compile(r"chain\s+(\S+)\s*\{")
_CHAIN_TYPE_RE = re.compile(
    r"type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+\S+)?\s+priority\s+([^;]+);"
)
_POLICY_RE = re.compile(r"policy\s+(accept|drop)\s*;")


def parse_nftables_conf(text: str) -> list[InputChain]:
    """Input base chains of an nftables configuration file (``nft -f`` syntax).

    A line-based reading of the usual layout (one statement per line);
    ``include`` directives are not followed.
    """
    chains: list[InputChain] = []
    depth = 0
    table: tuple[str, str] | None = None
    table_depth = 0
    chain: dict[str, Any] | None = None
    chain_depth = 0

    def close_chain() -> None:
        nonlocal chain
        if chain is not None and chain["hook"] == "input" and chain["type"] == "filter":
            family = chain["family"]
            if family in NFT_FAMILIES:
                chains.append(
                    InputChain(
                        label=f"{family} {chain['table']} {chain['name']}",
                        families=NFT_FAMILIES[family],
                        policy=chain["policy"],
                        rules=chain["rules"],
                        priority=chain["priority"],
                        fallthrough=chain["fallthrough"],
                        table=(family, chain["table"]),
                    )
                )
        chain = None

    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        opens, closes = line.count("{"), line.count("}")
        m_table = _TABLE_RE.match(line)
        m_chain = _CHAIN_RE.match(line)
        if m_table and chain is None:
            table = (m_table.group(1) or "ip", m_table.group(2))
            table_depth = depth + 1
        elif m_chain and table is not None and chain is None:
            chain = {
                "family": table[0],
                "table": table[1],
                "name": m_chain.group(1),
                "hook": None,
                "type": None,
                "policy": "accept",
                "priority": 0,
                "rules": 0,
                "fallthrough": None,
                "done": False,
            }
            chain_depth = depth + 1
        if chain is not None:
            m_type = _CHAIN_TYPE_RE.search(line)
            m_policy = _POLICY_RE.search(line)
            if m_type:
                chain["type"], chain["hook"] = m_type.group(1), m_type.group(2)
                chain["priority"] = _text_priority(m_type.group(3))
            if m_policy:
                chain["policy"] = m_policy.group(1)
            is_header = bool(m_chain or m_type or m_policy)
            if not is_header and depth == chain_depth and line != "}":
                chain["rules"] += 1
                if not chain["done"]:
                    words = line.split()
                    if words[:1] == ["counter"]:  # "counter" or "counter packets N bytes N"
                        words = words[5:] if words[1:2] == ["packets"] else words[1:]
                    if (
                        words
                        and words[0] in _VERDICTS
                        and (len(words) == 1 or words[0] == "reject")
                    ):
                        chain["fallthrough"] = _VERDICTS[words[0]]
                        chain["done"] = True
                    elif words and words[0] in ("goto", "return") and len(words) <= 2:
                        chain["done"] = True
        depth += opens - closes
        if chain is not None and depth < chain_depth:
            close_chain()
        if table is not None and depth < table_depth:
            table = None
    close_chain()
    return chains


# --- iptables ------------------------------------------------------------------


@dataclass(frozen=True)
class IptablesFilter:
    """The ``filter`` table of ``iptables -S`` / ``iptables-save`` output."""

    input: InputChain | None
    rule_count: int


def parse_iptables_version(text: str) -> Literal["nf_tables", "legacy"] | None:
    if "(nf_tables)" in text:
        return "nf_tables"
    if "(legacy)" in text:
        return "legacy"
    return None


def _iptables_unconditional(args: list[str]) -> str | None:
    """The target of a rule without match options, e.g. ``-j DROP``; else None."""
    rest = list(args)
    # A comment does not match anything.
    while len(rest) >= 4 and rest[:3] == ["-m", "comment", "--comment"]:
        rest = rest[4:]
    plain = len(rest) == 2 or (len(rest) > 2 and rest[1:3] == ["REJECT", "--reject-with"])
    if len(rest) >= 2 and rest[0] in ("-j", "-g") and plain:
        return rest[1] if rest[0] == "-j" else "GOTO"
    return None


def parse_iptables_save(text: str, family: Literal["ipv4", "ipv6"] = "ipv4") -> IptablesFilter:
    """Parse ``iptables -S`` or ``iptables-save`` output (only the filter table counts)."""
    table = "filter"  # `iptables -S` prints the filter table without a header
    policy: str | None = None
    input_rules = 0
    total = 0
    fallthrough: InboundPolicy | None = None
    done = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table != "filter":
            continue
        line = re.sub(r"^\[\d+:\d+\]\s*", "", line)  # iptables-save -c counters
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) >= 2 and parts[0] == "INPUT":
                policy = parts[1]
        elif line.startswith("-P "):
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "INPUT":
                policy = parts[2]
        elif line.startswith("-A "):
            total += 1
            try:
                parts = shlex.split(line)
            except ValueError:
                parts = line.split()
            if len(parts) < 2 or parts[1] != "INPUT":
                continue
            input_rules += 1
            if done:
                continue
            target = _iptables_unconditional(parts[2:])
            if target in ("ACCEPT", "DROP", "REJECT"):
                fallthrough = _VERDICTS[target.lower()]
                done = True
            elif target in ("RETURN", "GOTO"):
                done = True
    if policy is None and input_rules == 0:
        return IptablesFilter(input=None, rule_count=total)
    tool = "iptables" if family == "ipv4" else "ip6tables"
    chain = InputChain(
        label=f"{tool} filter INPUT",
        families=frozenset({family}),
        policy="drop" if policy == "DROP" else "accept",
        rules=input_rules,
        fallthrough=fallthrough,
    )
    return IptablesFilter(input=chain, rule_count=total)


def iptables_backend(
    tables: Sequence[IptablesFilter], evidence: Sequence[str] = ()
) -> FirewallBackend:
    """The iptables backend from the parsed IPv4 (and IPv6) filter tables."""
    chains = [t.input for t in tables if t.input is not None]
    summary = summarise_input_chains(chains)
    return FirewallBackend(
        name="iptables",
        installed=True,
        active=summary.active,
        default_inbound=summary.default_inbound,
        rule_count=sum(t.rule_count for t in tables),
        evidence=[*evidence, *(c.describe() for c in chains), *summary.evidence("iptables")],
    )


# --- ufw -------------------------------------------------------------------------

_UFW_DEFAULTS: dict[str, InboundPolicy] = {"deny": "drop", "reject": "reject", "allow": "accept"}


@dataclass(frozen=True)
class UfwStatus:
    active: bool | None
    default_inbound: InboundPolicy | None = None
    rule_count: int | None = None


def parse_ufw_status(text: str) -> UfwStatus:
    """Parse ``ufw status verbose`` (or plain ``ufw status``)."""
    active: bool | None = None
    default: InboundPolicy | None = None
    rules: int | None = None
    in_table = False
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"Status:\s*(\w+)", line)
        if m:
            active = m.group(1).lower() == "active"
            continue
        m = re.match(r"Default:\s*(\w+)\s*\(incoming\)", line)
        if m:
            default = _UFW_DEFAULTS.get(m.group(1).lower())
            continue
        if re.fullmatch(r"--[\s-]*", line):
            in_table, rules = True, 0
            continue
        if in_table and line:
            rules = (rules or 0) + 1
    if active and rules is None:
        rules = 0
    return UfwStatus(active=active, default_inbound=default, rule_count=rules)


def _shell_vars(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", raw)
        if m and not raw.lstrip().startswith("#"):
            values[m.group(1)] = m.group(2).strip("'\"")
    return values


def parse_ufw_conf(text: str) -> bool | None:
    """``ENABLED=yes`` in ``/etc/ufw/ufw.conf``; None if the key is absent."""
    value = _shell_vars(text).get("ENABLED")
    return None if value is None else value.lower() == "yes"


def parse_ufw_default(text: str) -> InboundPolicy | None:
    """``DEFAULT_INPUT_POLICY`` in ``/etc/default/ufw``."""
    value = _shell_vars(text).get("DEFAULT_INPUT_POLICY", "").upper()
    return {"DROP": "drop", "REJECT": "reject", "ACCEPT": "accept"}.get(value)


# --- firewalld -------------------------------------------------------------------


def parse_firewalld_conf(text: str) -> str:
    """``DefaultZone`` of ``firewalld.conf`` (firewalld falls back to ``public``)."""
    zone = _shell_vars(text).get("DefaultZone", "").strip()
    return zone or FIREWALLD_DEFAULT_ZONE


def parse_firewalld_zone_target(xml_text: str) -> InboundPolicy | None:
    """The policy for unmatched inbound traffic of a zone XML.  Raises ValueError."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"bad zone XML: {exc}") from exc
    target = (root.get("target") or "default").strip("%").upper()
    return {"DEFAULT": "reject", "REJECT": "reject", "DROP": "drop", "ACCEPT": "accept"}.get(target)


# --- probe helpers ---------------------------------------------------------------


@dataclass
class _Findings:
    notes: list[str] = field(default_factory=list)
    backends: list[FirewallBackend] = field(default_factory=list)
    kernel: list[FirewallBackend] = field(default_factory=list)  # rulesets read from the kernel
    frontends: list[FirewallBackend] = field(default_factory=list)
    needs_root: bool = False


def _find(ctx: ProbeContext, paths: Sequence[str]) -> str | None:
    return next((p for p in paths if ctx.exists(p)), None)


def _run(ctx: ProbeContext, argv: Sequence[str], notes: list[str]) -> CommandResult | None:
    """Run a command; a missing tool or a timeout becomes a note and None."""
    try:
        return ctx.runner.run(argv)
    except ToolMissing as exc:
        notes.append(f"{argv[0]}: {exc}")
    except CommandTimeout as exc:
        notes.append(str(exc))
    return None


def _first_line(result: CommandResult) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"exit status {result.returncode}"


def _unit_enabled(ctx: ProbeContext, units: Sequence[str]) -> bool | None:
    """Whether a systemd unit is enabled in the root; None without systemd configuration."""
    base = ctx.path(SYSTEMD_UNIT_DIR)
    try:
        if not base.is_dir():
            return None
        # lexists: unit links are absolute, so under an alternate root they may dangle.
        wants = [d for d in base.iterdir() if d.name.endswith(".wants")]
        return any(os.path.lexists(d / unit) for d in wants for unit in units)
    except OSError:
        return None


def _zone_target(ctx: ProbeContext) -> tuple[InboundPolicy | None, list[str]]:
    conf = ctx.read_text(FIREWALLD_CONF)
    zone = parse_firewalld_conf(conf or "")
    evidence = [f"default zone {zone}" + ("" if conf else " (firewalld.conf not found)")]
    if "/" in zone or zone.startswith("."):
        return None, evidence
    for directory in FIREWALLD_ZONE_DIRS:
        path = f"{directory}/{zone}.xml"
        text = ctx.read_text(path)
        if text is None:
            continue
        try:
            target = parse_firewalld_zone_target(text)
        except ValueError as exc:
            evidence.append(f"{path}: {exc}")
            return None, evidence
        evidence.append(f"{path}: unmatched inbound traffic -> {target}")
        return target, evidence
    evidence.append(f"zone file {zone}.xml not found")
    return None, evidence


# --- live probing ----------------------------------------------------------------


def _live_nft(ctx: ProbeContext, found: _Findings, binary: str) -> str | None:
    """Add the nftables backend; return the ruleset JSON when it could be read."""
    evidence = [f"{binary} present"]
    if not ctx.is_root:
        found.needs_root = True
        found.notes.append("nftables: reading the ruleset needs root")
        found.backends.append(FirewallBackend(name="nftables", installed=True, evidence=evidence))
        return None
    result = _run(ctx, ["nft", "-j", "list", "ruleset"], found.notes)
    if result is not None and not result.ok:
        found.notes.append(f"nft -j list ruleset failed: {_first_line(result)}")
    elif result is not None:
        try:
            backend = parse_nft_ruleset(result.stdout)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            found.notes.append(f"nft -j list ruleset: unreadable output ({exc})")
        else:
            found.backends.append(backend)
            found.kernel.append(backend)
            return result.stdout
    found.backends.append(FirewallBackend(name="nftables", installed=True, evidence=evidence))
    return None


def _live_iptables(ctx: ProbeContext, found: _Findings, binary: str, nft_json: str | None) -> None:
    evidence = [f"{binary} present"]
    version_result = _run(ctx, ["iptables", "-V"], found.notes)
    version = version_result.stdout.strip() if version_result and version_result.ok else ""
    variant = parse_iptables_version(version)
    if version:
        evidence = [version]
    if variant == "nf_tables" and (ctx.read_text(LEGACY_TABLES) or "").strip():
        found.notes.append(
            "legacy iptables tables are loaded too (/proc/net/ip_tables_names); not inspected"
        )
    if variant == "nf_tables" and nft_json is not None:
        found.backends.append(nft_iptables_view(nft_json, version))
        return
    if not ctx.is_root:
        found.needs_root = True
        found.notes.append("iptables: reading the ruleset needs root")
        found.backends.append(FirewallBackend(name="iptables", installed=True, evidence=evidence))
        return
    tables: list[IptablesFilter] = []
    for tool, family in _IPTABLES_TOOLS:
        result = _run(ctx, [tool, "-w", "5", "-S"], found.notes)
        if result is None:
            continue
        if not result.ok:
            found.notes.append(f"{tool} -S failed: {_first_line(result)}")
            continue
        tables.append(parse_iptables_save(result.stdout, family))
    if not any(t.input is not None for t in tables):
        found.backends.append(FirewallBackend(name="iptables", installed=True, evidence=evidence))
        return
    if variant == "nf_tables":
        found.notes.append("nftables ruleset not read: only the iptables-nft tables were inspected")
    backend = iptables_backend(tables, evidence)
    found.backends.append(backend)
    found.kernel.append(backend)


def _ufw_backend(ctx: ProbeContext, binary: str, live: bool, notes: list[str]) -> FirewallBackend:
    evidence = [f"{binary} present"]
    conf = ctx.read_text(UFW_CONF)
    enabled = parse_ufw_conf(conf) if conf is not None else None
    evidence.append(
        f"{UFW_CONF}: ENABLED={'yes' if enabled else 'no'}"
        if enabled is not None
        else f"{UFW_CONF}: not readable"
    )
    defaults = ctx.read_text(UFW_DEFAULTS)
    configured = parse_ufw_default(defaults) if defaults is not None else None
    if configured:
        evidence.append(f"{UFW_DEFAULTS}: DEFAULT_INPUT_POLICY={configured.upper()}")
    active, default, rules = enabled, configured, None
    if live and ctx.is_root:
        result = _run(ctx, ["ufw", "status", "verbose"], notes)
        if result is not None and result.ok:
            status = parse_ufw_status(result.stdout)
            if status.active is not None:
                active, rules = status.active, status.rule_count
                evidence.append(f"ufw status: {'active' if status.active else 'inactive'}")
                default = status.default_inbound or configured
        elif result is not None:
            notes.append(f"ufw status verbose failed: {_first_line(result)}")
    return FirewallBackend(
        name="ufw",
        installed=True,
        active=active,
        default_inbound=default if active else None,
        rule_count=rules,
        evidence=evidence,
    )


def _live_firewalld(ctx: ProbeContext, binary: str, notes: list[str]) -> FirewallBackend:
    evidence = [f"{binary} present"]
    active: bool | None = None
    result = _run(ctx, ["firewall-cmd", "--state"], notes)
    if result is not None:
        state = (result.stdout.strip() or result.stderr.strip()).splitlines()
        text = state[0] if state else ""
        if result.ok and text == "running":
            active = True
        elif result.returncode == FIREWALLD_NOT_RUNNING_RC or text == "not running":
            active = False
        evidence.append(f"firewall-cmd --state: {text or _first_line(result)}")
    if active is None:
        try:
            active = "firewalld" in ctx.running_processes()
            evidence.append(f"firewalld process {'running' if active else 'not running'}")
        except Exception as exc:  # psutil failures must not break the probe
            notes.append(f"firewalld: process list unavailable ({exc})")
    default, zone_evidence = _zone_target(ctx) if active else (None, [])
    return FirewallBackend(
        name="firewalld",
        installed=True,
        active=active,
        default_inbound=default,
        evidence=evidence + zone_evidence,
    )


def _summarise(found: _Findings, offline: bool) -> FirewallSection:
    notes = found.notes
    if found.kernel:
        active = any(b.active for b in found.kernel)
        default = (
            most_restrictive(b.default_inbound for b in found.kernel if b.active)
            if active
            else "accept"
        )
        return FirewallSection(
            backends=found.backends, active=active, default_inbound=default, notes=notes
        )
    on = [b for b in found.frontends if b.active]
    if on:
        if not offline:
            names = ", ".join(b.name for b in on)
            notes.append(f"kernel ruleset not read; summary from {names}")
        return FirewallSection(
            backends=found.backends,
            active=True,
            default_inbound=most_restrictive(b.default_inbound for b in on),
            notes=notes,
        )
    if not found.backends:
        if not offline:
            notes.append("no firewall backend (nftables, iptables, ufw, firewalld) installed")
        return FirewallSection(backends=[], active=False, notes=notes)
    if offline:
        return FirewallSection(backends=found.backends, active=False, notes=notes)
    reason = NEEDS_ROOT_REASON if found.needs_root else UNREADABLE_REASON
    return unknown(FirewallSection, reason, backends=found.backends, notes=notes)


def _probe_live(ctx: ProbeContext) -> FirewallSection:
    found = _Findings()
    nft_json = None
    if binary := _find(ctx, NFT_PATHS):
        nft_json = _live_nft(ctx, found, binary)
    if binary := _find(ctx, IPTABLES_PATHS):
        _live_iptables(ctx, found, binary, nft_json)
    if binary := _find(ctx, UFW_PATHS):
        backend = _ufw_backend(ctx, binary, live=True, notes=found.notes)
        found.backends.append(backend)
        found.frontends.append(backend)
    if binary := _find(ctx, FIREWALLD_PATHS):
        backend = _live_firewalld(ctx, binary, found.notes)
        found.backends.append(backend)
        found.frontends.append(backend)
    return _summarise(found, offline=False)


# --- offline (alternate root) ----------------------------------------------------


def _enabled_evidence(units: Sequence[str], enabled: bool | None) -> str:
    state = {True: "enabled", False: "not enabled", None: "unknown (no systemd configuration)"}
    return f"{' / '.join(units)}: {state[enabled]}"


def _offline_nftables(ctx: ProbeContext, binary: str) -> FirewallBackend:
    evidence = [f"{binary} present"]
    units = ("nftables.service",)
    enabled = _unit_enabled(ctx, units)
    evidence.append(_enabled_evidence(units, enabled))
    conf_path = next((p for p in NFTABLES_CONFS if ctx.read_text(p) is not None), None)
    if conf_path is None:
        evidence.append("no nftables configuration file")
        return FirewallBackend(name="nftables", installed=True, active=False, evidence=evidence)
    chains = parse_nftables_conf(ctx.read_text(conf_path) or "")
    summary = summarise_input_chains(chains)
    evidence += [f"{conf_path}: {c.describe()}" for c in chains]
    evidence += summary.evidence(conf_path)
    # Without systemd configuration nobody can tell whether the file is loaded at boot.
    active: bool | None = summary.active and enabled if enabled is not None else None
    if not summary.active:
        active = False
    return FirewallBackend(
        name="nftables",
        installed=True,
        active=active,
        default_inbound=summary.default_inbound if active else None,
        rule_count=sum(c.rules for c in chains),
        evidence=evidence,
    )


def _offline_iptables(ctx: ProbeContext, binary: str) -> FirewallBackend:
    evidence = [f"{binary} present"]
    tables: list[IptablesFilter] = []
    enabled_any = False
    for path, family, units in IPTABLES_SAVE_FILES:
        text = ctx.read_text(path)
        if text is None:
            continue
        enabled = _unit_enabled(ctx, units)
        evidence.append(f"{path} present; {_enabled_evidence(units, enabled)}")
        if enabled:
            enabled_any = True
            tables.append(parse_iptables_save(text, family))
    if not tables:
        if not enabled_any and len(evidence) == 1:
            evidence.append("no saved iptables ruleset")
        return FirewallBackend(name="iptables", installed=True, active=False, evidence=evidence)
    backend = iptables_backend(tables, evidence)
    if not backend.active:
        return backend.model_copy(update={"default_inbound": None})
    return backend


def _probe_offline(ctx: ProbeContext) -> FirewallSection:
    found = _Findings(notes=[OFFLINE_NOTE])
    for paths, build in (
        (NFT_PATHS, _offline_nftables),
        (IPTABLES_PATHS, _offline_iptables),
    ):
        if binary := _find(ctx, paths):
            backend = build(ctx, binary)
            found.backends.append(backend)
            found.frontends.append(backend)  # configuration, not an observed ruleset
    if binary := _find(ctx, UFW_PATHS):
        backend = _ufw_backend(ctx, binary, live=False, notes=found.notes)
        found.backends.append(backend)
        found.frontends.append(backend)
    if binary := _find(ctx, FIREWALLD_PATHS):
        units = ("firewalld.service",)
        enabled = _unit_enabled(ctx, units)
        default, zone_evidence = _zone_target(ctx) if enabled else (None, [])
        backend = FirewallBackend(
            name="firewalld",
            installed=True,
            active=enabled,
            default_inbound=default,
            evidence=[f"{binary} present", _enabled_evidence(units, enabled), *zone_evidence],
        )
        found.backends.append(backend)
        found.frontends.append(backend)
    return _summarise(found, offline=True)


def probe(ctx: ProbeContext) -> FirewallSection:
    if not ctx.live:
        return _probe_offline(ctx)
    return _probe_live(ctx)
