"""IDS / IPS presence: network and host intrusion detection, file integrity, ban daemons.

Detection is data (``SIGNATURES``): a product is *installed* when one of its
binaries or install directories exists under the root, and *running* when one
of its process names is in ``ctx.running_processes()`` (names, executable and
argv[0]/argv[1] basenames, so the Python daemon ``fail2ban-server`` and
Suricata's renamed main thread ``Suricata-Main`` both match).  Products without
a daemon (AIDE, Tripwire) always report ``running=None``, and so does every
product when ``ctx.live`` is False.  A process seen running without any known
path still counts as installed.

Suricata is reported as ``ips`` when it is configured inline (``LISTENMODE=nfqueue``
in ``/etc/default/suricata`` or ``copy-mode: ips`` in ``suricata.yaml``),
otherwise ``nids``.  The Wazuh agent and manager are separate products;
``/var/ossec`` alone is not evidence of either, since OSSEC uses it too (Wazuh
before 4.2 still used the ``ossec-*`` daemon names and shows up as OSSEC).
EDR sensors such as CrowdStrike falcon-sensor belong to the antivirus section
and are not repeated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agent.probes.base import ProbeContext
from agent.report import IdsProduct, IdsSection

IdsKind = Literal["nids", "hids", "ips"]

OFFLINE_NOTE = "live state (running processes) was not observed: alternate root"


@dataclass(frozen=True)
class IpsMarker:
    """A configuration line that makes a product run inline (as an IPS)."""

    path: str
    pattern: str  # regex, searched with re.MULTILINE


@dataclass(frozen=True)
class IdsSignature:
    name: str
    kind: IdsKind
    paths: tuple[str, ...]  # binaries or install directories: any present -> installed
    processes: tuple[str, ...] = ()  # empty: not a daemon, running is always None
    evidence_paths: tuple[str, ...] = ()  # configuration, databases, schedules: evidence only
    ips_markers: tuple[IpsMarker, ...] = ()


SIGNATURES: tuple[IdsSignature, ...] = (
    IdsSignature(
        name="Suricata",
        kind="nids",
        paths=("/usr/bin/suricata", "/usr/sbin/suricata", "/usr/local/bin/suricata"),
        processes=("suricata", "Suricata-Main"),
        evidence_paths=("/etc/suricata/suricata.yaml", "/usr/local/etc/suricata/suricata.yaml"),
        ips_markers=(
            IpsMarker("/etc/default/suricata", r"^\s*LISTENMODE\s*=\s*[\"']?nfqueue"),
            IpsMarker("/etc/suricata/suricata.yaml", r"^\s*copy-mode:\s*ips\b"),
        ),
    ),
    IdsSignature(
        name="Snort",
        kind="nids",
        paths=(
            "/usr/sbin/snort",
            "/usr/bin/snort",
            "/usr/local/bin/snort",
            "/usr/local/sbin/snort",
        ),
        processes=("snort",),
        evidence_paths=(
            "/etc/snort/snort.conf",
            "/etc/snort/snort.lua",
            "/usr/local/etc/snort/snort.lua",
        ),
    ),
    IdsSignature(
        name="Zeek",
        kind="nids",
        paths=(
            "/opt/zeek",
            "/usr/local/zeek",
            "/usr/bin/zeek",
            "/usr/local/bin/zeek",
            "/opt/bro/bin/bro",
            "/usr/local/bro/bin/bro",
        ),
        processes=("zeek", "bro"),
        evidence_paths=("/opt/zeek/etc/node.cfg", "/etc/zeek/node.cfg"),
    ),
    IdsSignature(
        name="Wazuh agent",
        kind="hids",
        paths=("/var/ossec/bin/wazuh-agentd",),
        processes=("wazuh-agentd",),
        evidence_paths=("/var/ossec/etc/ossec.conf",),
    ),
    IdsSignature(
        name="Wazuh manager",
        kind="hids",
        paths=("/var/ossec/bin/wazuh-analysisd",),
        processes=("wazuh-analysisd",),
        evidence_paths=("/var/ossec/etc/ossec.conf",),
    ),
    IdsSignature(
        name="OSSEC",
        kind="hids",
        paths=("/var/ossec/bin/ossec-agentd", "/var/ossec/bin/ossec-analysisd"),
        processes=("ossec-agentd", "ossec-analysisd", "ossec-syscheckd"),
        evidence_paths=("/var/ossec/etc/ossec.conf",),
    ),
    IdsSignature(
        name="fail2ban",
        kind="ips",
        paths=("/usr/bin/fail2ban-server", "/usr/local/bin/fail2ban-server"),
        processes=("fail2ban-server",),
        evidence_paths=("/etc/fail2ban/jail.local", "/etc/fail2ban/jail.conf"),
    ),
    IdsSignature(
        name="AIDE",
        kind="hids",
        paths=("/usr/bin/aide", "/usr/sbin/aide", "/usr/local/bin/aide"),
        evidence_paths=(
            "/etc/aide/aide.conf",
            "/etc/aide.conf",
            "/usr/local/etc/aide.conf",
            "/var/lib/aide/aide.db",
            "/var/lib/aide/aide.db.gz",
            "/etc/cron.daily/aide",
            "/lib/systemd/system/dailyaidecheck.timer",
            "/usr/lib/systemd/system/aidecheck.timer",
        ),
    ),
    IdsSignature(
        name="Tripwire",
        kind="hids",
        paths=("/usr/sbin/tripwire", "/usr/local/sbin/tripwire"),
        evidence_paths=("/etc/tripwire/tw.cfg", "/etc/tripwire/tw.pol"),
    ),
    IdsSignature(
        name="Samhain",
        kind="hids",
        paths=("/usr/sbin/samhain", "/usr/local/sbin/samhain"),
        processes=("samhain",),
        evidence_paths=("/etc/samhainrc",),
    ),
    IdsSignature(
        name="osquery",
        kind="hids",
        paths=("/usr/bin/osqueryd", "/opt/osquery/bin/osqueryd", "/usr/local/bin/osqueryd"),
        processes=("osqueryd",),
        evidence_paths=("/etc/osquery/osquery.conf", "/var/osquery/osquery.conf"),
    ),
)


def _is_ips(ctx: ProbeContext, markers: tuple[IpsMarker, ...]) -> str | None:
    for marker in markers:
        text = ctx.read_text(marker.path)
        if text and re.search(marker.pattern, text, re.MULTILINE):
            return f"{marker.path}: inline (IPS) mode configured"
    return None


def detect(
    ctx: ProbeContext, signature: IdsSignature, processes: set[str] | None
) -> IdsProduct | None:
    """One product as seen in ``ctx``; None when neither installed nor running.

    ``processes`` is the running process names, or None when they are unknown.
    """
    evidence = [f"{p} present" for p in signature.paths if ctx.exists(p)]
    installed = bool(evidence)
    running: bool | None = None
    if signature.processes and processes is not None:
        seen = [name for name in signature.processes if name in processes]
        running = bool(seen)
        evidence += [f"process {name} running" for name in seen]
    if not installed and not running:
        return None
    if not installed:
        evidence.append("no binary at a known path")
    evidence += [f"{p} present" for p in signature.evidence_paths if ctx.exists(p)]
    kind = signature.kind
    if ips := _is_ips(ctx, signature.ips_markers):
        kind = "ips"
        evidence.append(ips)
    return IdsProduct(
        name=signature.name,
        kind=kind,
        installed=True,
        running=running,
        evidence=evidence,
    )


def probe(ctx: ProbeContext) -> IdsSection:
    notes: list[str] = []
    processes: set[str] | None = None
    if not ctx.live:
        notes.append(OFFLINE_NOTE)
    else:
        try:
            processes = ctx.running_processes()
        except Exception as exc:  # psutil trouble: keep the file-based facts
            notes.append(f"process list unavailable, running state unknown ({exc})")
    products = [
        product
        for signature in SIGNATURES
        if (product := detect(ctx, signature, processes)) is not None
    ]
    return IdsSection(products=products, notes=notes)
