"""Remote network facts: parsers of ip/ss/proc output and the fallbacks between them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.probes.base import (
    CommandResult,
    CommandRunner,
    CommandTimeout,
    ProbeContext,
    ToolMissing,
)
from agent.probes.network import listening_from_proc
from agent.report import InterfaceAddress, ListeningSocket, NetworkInterface
from collector.agentless.network import (
    IP_ADDR_ARGV,
    IP_JSON_ARGV,
    IP_LINK_ARGV,
    SS_ARGV,
    SYS_BLOCK_NOTE,
    byteorder_of,
    encryption_probe,
    interfaces_from_proc,
    network_probe,
    parse_if_inet6,
    parse_ip_json,
    parse_ip_oneline,
    parse_mounts,
    parse_ss,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "network"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def sock(protocol: str, address: str, port: int, process: str | None = None) -> ListeningSocket:
    return ListeningSocket(protocol=protocol, address=address, port=port, process=process)  # type: ignore[arg-type]


def v4(address: str, prefixlen: int) -> InterfaceAddress:
    return InterfaceAddress(family="ipv4", address=address, prefixlen=prefixlen)


def v6(address: str, prefixlen: int) -> InterfaceAddress:
    return InterfaceAddress(family="ipv6", address=address, prefixlen=prefixlen)


# What the recorded fixtures show (see tests/fixtures/network/README.md).
RECORDED_INTERFACES = [
    NetworkInterface(
        name="lo", mac=None, is_up=True, addresses=[v4("127.0.0.1", 8), v6("::1", 128)]
    ),
    NetworkInterface(name="ifb0", mac="82:20:42:30:27:28", is_up=False),
    NetworkInterface(name="ifb1", mac="6e:65:d7:40:a4:76", is_up=False),
    NetworkInterface(
        name="eth0",
        mac="02:fc:00:00:00:01",
        is_up=True,
        addresses=[v4("192.0.2.2", 24), v6("fd00::2", 64), v6("fe80::fc:ff:fe00:1", 64)],
    ),
]
RECORDED_LISTENERS = [
    sock("tcp", "0.0.0.0", 2024),  # another pid namespace: ss shows no process
    sock("tcp", "127.0.0.1", 8631, "python3"),
    sock("tcp", "::", 8632, "python3"),
    sock("tcp", "::1", 8633, "python3"),
    sock("tcp", "::", 8634, "python3"),  # dual-stack: ss prints '*'
    sock("tcp", "127.0.0.1", 8635, "python3"),  # bound to lo: ss prints '127.0.0.1%lo'
    sock("udp", "0.0.0.0", 5353, "python3"),
    sock("udp", "::", 5355, "python3"),
]


# --- parsers -----------------------------------------------------------------------


def test_parse_ip_json_recorded() -> None:
    assert parse_ip_json(text("ip_addr.json")) == RECORDED_INTERFACES


def test_parse_ip_json_refuses_other_documents() -> None:
    with pytest.raises(ValueError):
        parse_ip_json('{"not": "a list"}')
    with pytest.raises(ValueError):
        parse_ip_json('Option "-j" is unknown, try "ip -help".')


def test_parse_ip_json_tunnels_and_no_carrier() -> None:
    doc = [
        {
            "ifname": "tun0",
            "flags": ["POINTOPOINT", "MULTICAST", "NOARP", "UP", "LOWER_UP"],
            "link_type": "none",
            "addr_info": [
                {"family": "inet", "local": "10.8.0.1", "address": "10.8.0.2", "prefixlen": 32}
            ],
        },
        {"ifname": "ipip0", "flags": ["NOARP"], "address": "0.0.0.0", "addr_info": []},
        {
            "ifname": "eth1",
            "flags": ["NO-CARRIER", "BROADCAST", "UP"],
            "address": "AA:BB:CC:00:11:22",
        },
        {},
    ]
    tun, ipip, eth1 = parse_ip_json(json.dumps(doc))
    assert tun.is_up is True and tun.mac is None and tun.addresses == [v4("10.8.0.1", 32)]
    assert ipip.mac is None and ipip.is_up is False  # an IP-shaped link address is no MAC
    assert eth1.is_up is False and eth1.mac == "aa:bb:cc:00:11:22"  # up, but no cable


def test_parse_ip_oneline_recorded_matches_json() -> None:
    parsed = parse_ip_oneline(text("ip_o_addr.txt"), text("ip_o_link.txt"))
    assert parsed == RECORDED_INTERFACES


def test_parse_ip_oneline_without_link_output_and_peers() -> None:
    addr = (
        "5: tun0    inet 10.8.0.1 peer 10.8.0.2/32 scope global tun0\\       valid_lft forever\n"
        "6: veth1@if7    inet6 fe80::1%veth1/64 scope link \\       valid_lft forever\n"
    )
    tun, veth = parse_ip_oneline(addr)
    assert tun.name == "tun0" and tun.is_up is None and tun.addresses == [v4("10.8.0.1", 32)]
    assert veth.name == "veth1" and veth.addresses == [v6("fe80::1", 64)]
    with pytest.raises(ValueError):
        parse_ip_oneline("", "")


def test_parse_ss_recorded() -> None:
    assert parse_ss(text("ss_listening.txt")) == RECORDED_LISTENERS


def test_parse_ss_several_processes_and_non_listeners() -> None:
    out = (
        'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=12,fd=6),'
        '("nginx",pid=11,fd=6),("nginx-debug",pid=10,fd=6))\n'
        'tcp ESTAB  0 0   10.0.0.5:22 10.0.0.9:51000 users:(("sshd",pid=9,fd=4))\n'
        "udp ESTAB  0 0   10.0.0.5:40000 10.0.0.1:53\n"
        "udp UNCONN 0 0   [fe80::1%eth0]:546 [::]:*\n"
        "garbage\n"
    )
    assert parse_ss(out) == [
        sock("tcp", "0.0.0.0", 80, "nginx"),
        sock("tcp", "0.0.0.0", 80, "nginx-debug"),
        sock("udp", "fe80::1", 546),
    ]


def test_ss_and_proc_net_of_the_same_moment_agree() -> None:
    """ss and the /proc/net tables recorded together list the same listeners."""
    tables = FIXTURES / "same_moment"
    from_proc = listening_from_proc(
        lambda path: (tables / f"proc_net_{path.rsplit('/', 1)[1]}").read_text(), "little"
    )
    without_process = {(s.protocol, s.address, s.port) for s in RECORDED_LISTENERS}
    assert from_proc is not None
    assert {(s.protocol, s.address, s.port) for s in from_proc} == without_process


def test_parse_if_inet6_and_proc_interfaces() -> None:
    assert parse_if_inet6(text("proc_net_if_inet6")) == {
        "eth0": [v6("fd00::2", 64), v6("fe80::fc:ff:fe00:1", 64)],
        "lo": [v6("::1", 128)],
    }
    sysfs = {  # /sys/class/net/*/{address,flags,operstate} of the recording machine
        "lo": ("00:00:00:00:00:00", "0x9", "unknown"),
        "ifb0": ("82:20:42:30:27:28", "0x82", "down"),
        "ifb1": ("6e:65:d7:40:a4:76", "0x82", "down"),
        "eth0": ("02:fc:00:00:00:01", "0x1003", "up"),
    }
    files = {"/proc/net/dev": text("proc_net_dev"), "/proc/net/if_inet6": text("proc_net_if_inet6")}
    for name, (mac, flags, state) in sysfs.items():
        files |= {
            f"/sys/class/net/{name}/address": mac + "\n",
            f"/sys/class/net/{name}/flags": flags + "\n",
            f"/sys/class/net/{name}/operstate": state + "\n",
        }
    # The same interfaces as ip shows, without the IPv4 addresses /proc does not list.
    expected = [
        i.model_copy(update={"addresses": [a for a in i.addresses if a.family == "ipv6"]})
        for i in RECORDED_INTERFACES
    ]
    assert interfaces_from_proc(files.get) == expected
    assert interfaces_from_proc({}.get) is None


def test_parse_mounts_keeps_block_filesystems_like_psutil() -> None:
    mounts = (
        "/dev/mapper/vg-root / ext4 rw,relatime 0 0\n"
        "proc /proc proc rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n"
        "/dev/sda1 /boot/efi\\040part vfat rw 0 0\n"
        "rpool/data /data zfs rw 0 0\n"
        "none /sys/fs/bpf bpf rw 0 0\n"
    )
    filesystems = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\n\tvfat\nnodev\tzfs\n"
    assert parse_mounts(mounts, filesystems) == [
        ("/dev/mapper/vg-root", "/"),
        ("/dev/sda1", "/boot/efi part"),
        ("rpool/data", "/data"),
    ]
    assert parse_mounts(mounts, None) == [
        ("/dev/mapper/vg-root", "/"),
        ("/dev/sda1", "/boot/efi part"),
    ]


def test_byteorder_of() -> None:
    assert byteorder_of("x86_64\n") == "little"
    assert byteorder_of("aarch64") == "little"
    assert byteorder_of("s390x\n") == "big"
    assert byteorder_of("") == "little"


# --- the probes with a fake remote host ---------------------------------------------


@dataclass
class FakeRemote(CommandRunner):
    """Answers commands from a table; a missing entry is a missing tool."""

    answers: dict[tuple[str, ...], CommandResult | Exception] = field(default_factory=dict)
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        key = tuple(argv)
        self.asked.append(key)
        answer = self.answers.get(key)
        if answer is None:
            raise ToolMissing(argv[0])
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(argv: Sequence[str], stdout: str) -> CommandResult:
    return CommandResult(tuple(argv), 0, stdout, "")


def fake_ctx(runner: FakeRemote, files: dict[str, str], is_root: bool = True) -> ProbeContext:
    ctx = ProbeContext(root=Path("/nonexistent-staging"), runner=runner, is_root=is_root)
    ctx.read_text = lambda absolute, limit=0: files.get(absolute)  # type: ignore[method-assign]
    return ctx


PROC_FILES = {
    **{f"/proc/net/{n}": text(f"same_moment/proc_net_{n}") for n in ("tcp", "tcp6", "udp", "udp6")},
    "/proc/net/dev": text("proc_net_dev"),
    "/proc/net/if_inet6": text("proc_net_if_inet6"),
}


def test_network_probe_with_ip_json_and_ss() -> None:
    runner = FakeRemote(
        {
            IP_JSON_ARGV: ok(IP_JSON_ARGV, text("ip_addr.json")),
            SS_ARGV: ok(SS_ARGV, text("ss_listening.txt")),
        }
    )
    section = network_probe(fake_ctx(runner, {}))
    assert section.status == "ok" and section.notes == []
    assert section.interfaces == RECORDED_INTERFACES
    assert section.listening == RECORDED_LISTENERS
    assert runner.asked == [IP_JSON_ARGV, SS_ARGV]


def test_old_iproute2_without_json_falls_back_to_oneline() -> None:
    no_json = CommandResult(IP_JSON_ARGV, 255, "", 'Option "-j" is unknown, try "ip -help".\n')
    runner = FakeRemote(
        {
            IP_JSON_ARGV: no_json,
            IP_ADDR_ARGV: ok(IP_ADDR_ARGV, text("ip_o_addr.txt")),
            IP_LINK_ARGV: ok(IP_LINK_ARGV, text("ip_o_link.txt")),
            SS_ARGV: ok(SS_ARGV, text("ss_listening.txt")),
        }
    )
    section = network_probe(fake_ctx(runner, {}, is_root=False))
    assert section.status == "ok"
    assert section.interfaces == RECORDED_INTERFACES
    assert any("'ip -o'" in n and "exit 255" in n and "-j" in n for n in section.notes)
    assert any("not root" in n for n in section.notes)


def test_without_ip_and_ss_the_proc_files_are_read() -> None:
    runner = FakeRemote({("uname", "-m"): ok(("uname", "-m"), "x86_64\n")})
    section = network_probe(fake_ctx(runner, PROC_FILES))
    assert section.status == "ok"
    assert [i.name for i in section.interfaces] == ["lo", "ifb0", "ifb1", "eth0"]
    assert section.interfaces[0].addresses == [v6("::1", 128)]
    assert section.listening == [s.model_copy(update={"process": None}) for s in RECORDED_LISTENERS]
    assert any(
        "/proc/net/dev" in n and "without IPv4" in n and "'ip' is not installed" in n
        for n in section.notes
    )
    assert any(
        "/proc/net, without process names" in n and "'ss' is not installed" in n
        for n in section.notes
    )
    assert IP_ADDR_ARGV not in runner.asked, "a missing ip is not asked twice"


def test_timeouts_fall_back_too() -> None:
    runner = FakeRemote(
        {
            IP_JSON_ARGV: CommandTimeout(IP_JSON_ARGV, 15),
            IP_ADDR_ARGV: CommandTimeout(IP_ADDR_ARGV, 15),
            SS_ARGV: CommandTimeout(SS_ARGV, 15),
        }
    )
    section = network_probe(fake_ctx(runner, PROC_FILES))
    assert section.status == "ok" and len(section.listening) == len(RECORDED_LISTENERS)
    assert any("did not finish within 15s" in n for n in section.notes)


def test_nothing_readable_is_a_clear_unknown() -> None:
    section = network_probe(fake_ctx(FakeRemote(), {}))
    assert section.status == "unknown"
    assert section.reason is not None
    assert "interfaces unreadable" in section.reason and "'ip' is not installed" in section.reason
    assert (
        "listening sockets unreadable" in section.reason
        and "'ss' is not installed" in section.reason
    )


LSBLK = {
    "blockdevices": [
        {
            "name": "sda",
            "type": "disk",
            "fstype": None,
            "mountpoint": None,
            "children": [
                {"name": "sda1", "type": "part", "fstype": "vfat", "mountpoint": "/boot/efi"},
                {
                    "name": "sda2",
                    "type": "part",
                    "fstype": "crypto_LUKS",
                    "mountpoint": None,
                    "children": [
                        {"name": "sda2_crypt", "type": "crypt", "fstype": "ext4", "mountpoint": "/"}
                    ],
                },
            ],
        }
    ]
}


def test_encryption_probe_uses_the_remote_listeners_and_lsblk() -> None:
    lsblk = ("lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT")
    ss = (
        'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=12,fd=6))\n'
        'tcp LISTEN 0 80 127.0.0.1:3306 0.0.0.0:* users:(("mariadbd",pid=20,fd=21))\n'
        'udp UNCONN 0 0 0.0.0.0:69 0.0.0.0:* users:(("in.tftpd",pid=30,fd=3))\n'
    )
    runner = FakeRemote({SS_ARGV: ok(SS_ARGV, ss), lsblk: ok(lsblk, json.dumps(LSBLK))})
    files = {
        "/proc/self/mounts": (
            "/dev/mapper/sda2_crypt / ext4 rw 0 0\n/dev/sda1 /boot/efi vfat rw 0 0\n"
        ),
        "/proc/filesystems": "\text4\n\tvfat\n",
        "/proc/swaps": "Filename\tType\tSize\tUsed\tPriority\n",
    }
    section = encryption_probe(fake_ctx(runner, files))
    assert section.status == "ok"
    assert [(p.port, p.service, p.process) for p in section.plaintext_services] == [
        (80, "http (plain HTTP listener)", "nginx")
    ]  # 3306 only on loopback, UDP never counted
    assert section.root_encrypted is True
    assert [(v.name, v.mountpoint) for v in section.volumes] == [("sda2_crypt", "/")]
    assert SYS_BLOCK_NOTE in section.notes
    assert "/ decided from lsblk" in section.notes


def test_encryption_probe_without_listeners_notes_it() -> None:
    lsblk = ("lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT")
    runner = FakeRemote({lsblk: ok(lsblk, json.dumps(LSBLK))})
    files = {"/proc/self/mounts": "/dev/mapper/sda2_crypt / ext4 rw 0 0\n"}
    section = encryption_probe(fake_ctx(runner, files))
    assert section.status == "ok" and section.plaintext_services == []
    assert any("listening sockets unreadable" in n for n in section.notes)
