"""A real agency network in Linux network namespaces, for segmentation tests and benchmarks.

Every address is inside 10.214.0.0/16; nothing is routed outside the lab.
Namespaces are named ``ptlab-<role>`` (``ptlab-outside``, ``ptlab-fw1``,
``ptlab-dmz``, ``ptlab-fw2``, ``ptlab-server``, ``ptlab-internal``,
``ptlab-printer``).  Level-3 topologies (``correct_level3``, ``ssh_leak``)::

    outside 10.214.1.10 ─ fw1 (.1.1 | .2.1) ─ [dmz bridge 10.214.2.0/24: dmz .2.10, fw2 .2.2]
    fw2 (.2.2 | .3.1 | .4.1) ─ server 10.214.3.10
                            └ [internal bridge 10.214.4.0/24: internal .4.10, printer .4.20]
    host 10.214.254.1 ─ fw2 10.214.254.2 (scan link: collector-side discovery)

Traffic from outside to the server or internal zone crosses fw1 and fw2
(2 routers).  Both firewalls forward with an nftables ``policy drop``:
established/related, ICMP echo (so traceroute shows the routers), the
allowed flows of the topology, and anything from the internal zone.

``flat``: the four zone hosts in one /24 (10.214.10.0/24, ``outside`` .10,
``dmz`` .74, ``server`` .138, ``internal`` .202 — each in its own /26 slice)
on one bridge, no firewall.

Management: each zone namespace has a second interface ``mgmt0`` on the
bridge ``ptlab-mgmt`` of the host namespace (10.214.255.0/24, host
10.214.255.1, where the collector listens).  Only that /24 goes over it: the
zone namespaces' other routes go through their firewall.  Each namespace has
its own ``/etc/machine-id`` (``/etc/netns/<ns>/``) and, through
:meth:`Lab.cmd`, its own hostname, so agents enrolled from different
namespaces are different hosts.

One lab at a time per machine (a lock file); :meth:`Lab.destroy` (also run by
the context manager and on a failed build) kills what was started in the
namespaces and deletes them, the bridge and ``/etc/netns/ptlab-*``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ptlab-"
MGMT_BRIDGE = "ptlab-mgmt"
MGMT_HOST = "10.214.255.1"
MGMT_NET = "10.214.255.0/24"
SCAN_HOST = "10.214.254.1"
SCAN_FW = "10.214.254.2"
LAB_NET = "10.214.0.0/16"
LOCK = Path("/run/posture-netlab.lock")
TOPOLOGIES = ("correct_level3", "flat", "ssh_leak", "bench4")

ZONE_NETS = {
    "outside": "10.214.1.0/24",
    "dmz": "10.214.2.0/24",
    "server": "10.214.3.0/24",
    "internal": "10.214.4.0/24",
}
FLAT_NET = "10.214.10.0/24"
FLAT_ZONE_NETS = {
    "outside": "10.214.10.0/26",
    "dmz": "10.214.10.64/26",
    "server": "10.214.10.128/26",
    "internal": "10.214.10.192/26",
}
KINDS = {"outside": "outside", "dmz": "dmz", "server": "server", "internal": "internal"}

LISTENER = r"""
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" if port == 22 else b"")
        finally:
            c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def missing_requirements() -> str | None:
    """Why the lab cannot be built here (None: it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "netlab needs root (network namespaces, veth, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"netlab needs the '{tool}' command (Debian: iproute2, nftables)"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"network namespaces unavailable: {exc}"
    return None


def sh(*args: str, ns: str | None = None, check: bool = True, input: str | None = None) -> str:
    cmd = [*(["ip", "netns", "exec", ns] if ns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class ZoneHost:
    """A machine standing in one zone (a namespace with a management link)."""

    ns: str
    zone: str
    address: str  # primary address in the zone
    mgmt: str | None  # management address (None: no agent can reach the collector)
    extra: list[str] = field(default_factory=list)  # more listener addresses


@dataclass
class Lab:
    topology: str
    hosts: dict[str, ZoneHost] = field(default_factory=dict)  # by role
    zone_nets: dict[str, str] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    _lock: int | None = None

    # --- building ---------------------------------------------------------------

    def _ns(self, role: str) -> str:
        name = PREFIX + role
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        etc = Path("/etc/netns") / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        (etc / "hostname").write_text(f"{role}\n")
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def _veth(self, a_ns: str | None, a_if: str, b_ns: str | None, b_if: str) -> None:
        sh("ip", "link", "add", "ptv-tmp-a", "type", "veth", "peer", "name", "ptv-tmp-b")
        for tmp, ns, name in (("ptv-tmp-a", a_ns, a_if), ("ptv-tmp-b", b_ns, b_if)):
            if ns:
                sh("ip", "link", "set", tmp, "netns", ns)
            sh("ip", "link", "set", tmp, "name", name, ns=ns)
            sh("ip", "link", "set", name, "up", ns=ns)

    @staticmethod
    def _bridge(ns: str | None, name: str) -> None:
        sh("ip", "link", "add", name, "type", "bridge", ns=ns)
        sh("ip", "link", "set", name, "up", ns=ns)

    @staticmethod
    def _addr(ns: str | None, dev: str, cidr: str) -> None:
        sh("ip", "addr", "add", cidr, "dev", dev, ns=ns)

    @staticmethod
    def _route(ns: str | None, dst: str, via: str) -> None:
        sh("ip", "route", "add", dst, "via", via, ns=ns)

    def _mgmt(self, ns: str, index: int) -> str:
        address = f"10.214.255.{10 + index}"
        self._veth(None, f"ptm-{index}", ns, "mgmt0")
        sh("ip", "link", "set", f"ptm-{index}", "master", MGMT_BRIDGE)
        self._addr(ns, "mgmt0", f"{address}/24")  # on-link /24 only: no zone route leaks
        return address

    def _router(self, ns: str) -> None:
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)

    def _nft(self, ns: str, rules: Sequence[str]) -> None:
        body = "\n".join(f"    {r}" for r in rules)
        sh(
            "nft", "-f", "-", ns=ns,
            input=(
                "table inet ptlab {\n  chain forward {\n"
                "    type filter hook forward priority 0; policy drop;\n"
                "    ct state established,related accept\n"
                "    icmp type echo-request accept\n"
                f"{body}\n  }}\n}}\n"
            ),
        )

    def build(self, extra_per_zone: int = 0) -> Lab:
        problem = missing_requirements()
        if problem:
            raise RuntimeError(problem)
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"unknown topology {self.topology!r}; one of {TOPOLOGIES}")
        self._lock = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        cleanup_stale()
        try:
            # safety net: nothing of the lab's /16 may leave by the host's default route
            sh("ip", "route", "add", "unreachable", LAB_NET)
            self._bridge(None, MGMT_BRIDGE)
            self._addr(None, MGMT_BRIDGE, f"{MGMT_HOST}/24")
            if self.topology == "flat":
                self._build_flat(extra_per_zone)
            else:
                self._build_level3(extra_per_zone)
            self._listeners()
        except BaseException:
            self.destroy()
            raise
        return self

    def _zone_host(self, role: str, zone: str, address: str, mgmt_index: int | None,
                   extra: int, prefix: int, dev: str = "eth0") -> ZoneHost:
        ns = PREFIX + role
        mgmt = self._mgmt(ns, mgmt_index) if mgmt_index is not None else None
        base = address.rsplit(".", 1)
        extras = [f"{base[0]}.{int(base[1]) + i + 1}" for i in range(extra)]
        for e in extras:
            self._addr(ns, dev, f"{e}/{prefix}")
        host = ZoneHost(ns=ns, zone=zone, address=address, mgmt=mgmt, extra=extras)
        self.hosts[role] = host
        return host

    def _build_level3(self, extra: int) -> None:
        self.zone_nets = dict(ZONE_NETS)
        outside, fw1, dmz, fw2, server, internal, printer = (
            self._ns(r)
            for r in ("outside", "fw1", "dmz", "fw2", "server", "internal", "printer")
        )
        for r in (fw1, fw2):
            self._router(r)
        # outside ─ fw1
        self._veth(outside, "eth0", fw1, "eth-out")
        self._addr(outside, "eth0", "10.214.1.10/24")
        self._addr(fw1, "eth-out", "10.214.1.1/24")
        self._route(outside, "default", "10.214.1.1")
        # dmz segment: a bridge in the dmz namespace with fw1 and fw2 on it
        self._bridge(dmz, "br-dmz")
        self._veth(dmz, "p-fw1", fw1, "eth-dmz")
        self._veth(dmz, "p-fw2", fw2, "eth-dmz")
        for port in ("p-fw1", "p-fw2"):
            sh("ip", "link", "set", port, "master", "br-dmz", ns=dmz)
        self._addr(dmz, "br-dmz", "10.214.2.10/24")
        self._addr(fw1, "eth-dmz", "10.214.2.1/24")
        self._addr(fw2, "eth-dmz", "10.214.2.2/24")
        self._route(dmz, "default", "10.214.2.1")
        self._route(dmz, "10.214.3.0/24", "10.214.2.2")
        self._route(dmz, "10.214.4.0/24", "10.214.2.2")
        self._route(fw1, "10.214.3.0/24", "10.214.2.2")
        self._route(fw1, "10.214.4.0/24", "10.214.2.2")
        self._route(fw2, "default", "10.214.2.1")
        # fw2 ─ server
        self._veth(fw2, "eth-srv", server, "eth0")
        self._addr(fw2, "eth-srv", "10.214.3.1/24")
        self._addr(server, "eth0", "10.214.3.10/24")
        self._route(server, "default", "10.214.3.1")
        # internal segment: bridge in the internal namespace, fw2 and the printer on it
        self._bridge(internal, "br-int")
        self._veth(internal, "p-fw2", fw2, "eth-int")
        self._veth(internal, "p-prn", printer, "eth0")
        for port in ("p-fw2", "p-prn"):
            sh("ip", "link", "set", port, "master", "br-int", ns=internal)
        self._addr(fw2, "eth-int", "10.214.4.1/24")
        self._addr(internal, "br-int", "10.214.4.10/24")
        self._addr(printer, "eth0", "10.214.4.20/24")
        self._route(internal, "default", "10.214.4.1")
        self._route(printer, "default", "10.214.4.1")
        # scan link host ─ fw2 for discovery from the collector
        self._veth(None, "ptlab-scan", fw2, "eth-scan")
        self._addr(None, "ptlab-scan", f"{SCAN_HOST}/30")
        self._addr(fw2, "eth-scan", f"{SCAN_FW}/30")
        for net in (ZONE_NETS["server"], ZONE_NETS["internal"]):
            self._route(None, net, SCAN_FW)
        # hosts and their management links
        for i, (role, address, dev) in enumerate(
            (("outside", "10.214.1.10", "eth0"), ("dmz", "10.214.2.10", "br-dmz"),
             ("server", "10.214.3.10", "eth0"), ("internal", "10.214.4.10", "br-int")),
            start=1,
        ):
            self._zone_host(role, role, address, i, extra, 24, dev)
        self.hosts["printer"] = ZoneHost(ns=printer, zone="internal", address="10.214.4.20",
                                         mgmt=None)
        # firewalls
        fw1_rules = [
            'iifname "eth-out" ip daddr 10.214.2.0/24 tcp dport 443 accept',
            "ip saddr 10.214.4.0/24 accept",
        ]
        fw2_rules = [
            'iifname "eth-dmz" ip saddr 10.214.2.0/24 ip daddr 10.214.3.0/24 '
            "tcp dport 5432 accept",
            "ip saddr 10.214.4.0/24 accept",
            f'iifname "eth-scan" ip saddr {SCAN_HOST} accept',
        ]
        if self.topology == "ssh_leak":
            fw2_rules.append(
                'iifname "eth-dmz" ip saddr 10.214.2.0/24 ip daddr 10.214.4.0/24 '
                "tcp dport 22 accept"
            )
        self._nft(fw1, fw1_rules)
        self._nft(fw2, fw2_rules)

    def _build_flat(self, extra: int) -> None:
        self.zone_nets = dict(FLAT_ZONE_NETS)
        switch = self._ns("switch")
        self._bridge(switch, "br0")
        for i, (role, address) in enumerate(
            (("outside", "10.214.10.10"), ("dmz", "10.214.10.74"),
             ("server", "10.214.10.138"), ("internal", "10.214.10.202")),
            start=1,
        ):
            ns = self._ns(role)
            self._veth(switch, f"p-{role}", ns, "eth0")
            sh("ip", "link", "set", f"p-{role}", "master", "br0", ns=switch)
            self._addr(ns, "eth0", f"{address}/24")
            self._zone_host(role, role, address, i, extra, 24)

    def _listeners(self) -> None:
        ports = {"dmz": [443], "server": [5432], "internal": [22], "printer": [80, 9100]}
        if self.topology == "bench4":
            ports = {"outside": [80], "dmz": [443, 80], "server": [5432, 22], "internal": [22]}
        for role, wanted in ports.items():
            if role in self.hosts:
                self.start(role, [sys.executable, "-c", LISTENER, *map(str, wanted)],
                           wait_for="ready")

    # --- running things inside -------------------------------------------------------

    def cmd(self, role: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace of ``role``, with its own hostname."""
        ns = self.hosts[role].ns if role in self.hosts else PREFIX + role
        hostname = f"{role}.lab"
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', hostname, *argv]

    def run(self, role: str, argv: Sequence[str], timeout: float = 180,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(role, argv), capture_output=True, text=True,
                              timeout=timeout, env=env)

    def start(self, role: str, argv: Sequence[str], wait_for: str | None = None) -> None:
        proc = subprocess.Popen(self.cmd(role, argv), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        if wait_for and proc.stdout is not None:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if wait_for in line:
                    return
                if not line and proc.poll() is not None:
                    break
            raise RuntimeError(f"{argv[0]} in {role} did not start")

    # --- the agency's declared model ---------------------------------------------------

    def network_model(self, flows: Sequence[tuple[str, str, int]] = ()) -> dict:
        """A ``PUT /agencies/{id}/network`` document for this lab."""
        zones = [
            {"name": zone, "kind": KINDS[zone], "cidrs": [cidr]}
            for zone, cidr in self.zone_nets.items()
        ]
        return {
            "zones": zones,
            "flows": [
                {"src_zone": s, "dst_zone": d, "protocol": "tcp", "port": p} for s, d, p in flows
            ],
        }

    # --- cleanup -----------------------------------------------------------------------

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()
        for ns in self.namespaces:
            kill_namespace_processes(ns)
        cleanup_stale()
        self.namespaces.clear()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def kill_namespace_processes(ns: str) -> None:
    """Kill what still runs in one of the lab's namespaces (started by the lab)."""
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def cleanup_stale() -> None:
    """Delete every ``ptlab-*`` namespace, the lab's host links and ``/etc/netns/ptlab-*``."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            kill_namespace_processes(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "route", "del", "unreachable", LAB_NET], capture_output=True)
    for link in (MGMT_BRIDGE, "ptlab-scan"):
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        parts = line.split(": ")
        if len(parts) > 1 and parts[1].split("@")[0].startswith("ptm-"):
            subprocess.run(["ip", "link", "del", parts[1].split("@")[0]], capture_output=True)
    etc = Path("/etc/netns")
    if etc.is_dir():
        for entry in etc.glob(PREFIX + "*"):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def netlab(topology: str, extra_per_zone: int = 0) -> Iterator[Lab]:
    lab = Lab(topology).build(extra_per_zone)
    try:
        yield lab
    finally:
        lab.destroy()
