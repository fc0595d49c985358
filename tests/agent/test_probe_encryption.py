"""Tests of the encryption probe: dm-crypt volumes from sysfs/lsblk/crypttab, plaintext services."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from agent.probes.base import CommandTimeout, ProbeContext
from agent.probes.encryption import (
    PLAINTEXT_PORTS,
    crypt_kind,
    is_loopback,
    lsblk_mount_encrypted,
    parse_crypttab,
    parse_lsblk,
    parse_proc_swaps,
    plaintext_services,
    probe,
)
from agent.report import EncryptedVolume, EncryptionSection, ListeningSocket, PlaintextService
from tests.probekit import FIXTURES, FakeRunner, ctx_for, fixture_text, make_root, result, write

ENC = FIXTURES / "encryption"
LSBLK = "lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT"
PROCESSES = {101: "inetd", 102: "apache2", 103: "postgres", 104: "mariadbd", 105: "exim4"}


def copy_root(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(ENC / name, root)
    return root


def mounts_of(name: str) -> list[SimpleNamespace]:
    rows = [line.split() for line in fixture_text("encryption", name, "mounts.txt").splitlines()]
    return [SimpleNamespace(device=d, mountpoint=m, fstype=f, opts="rw") for d, m, f in rows]


def conn(address: str, port: int, pid: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        type=socket.SOCK_STREAM, laddr=(address, port), raddr=(), status="LISTEN", pid=pid
    )


LOOPBACK_ONLY = [conn("127.0.0.1", 5432, 103), conn("::1", 3306, 104), conn("0.0.0.0", 22)]
EXPOSED = [
    conn("0.0.0.0", 23, 101),
    conn("::", 80, 102),
    conn("0.0.0.0", 443, 102),  # TLS: not listed
    conn("0.0.0.0", 25, 105),  # SMTP: STARTTLS cannot be told without connecting
    conn("127.0.0.1", 5432, 103),  # loopback: not exposed
    conn("10.0.0.5", 3306, 104),
]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch):
    """Set what psutil reports: mounted filesystems and listening sockets."""

    def set_host(mounts: list[Any], connections: list[Any]) -> None:
        monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: mounts)
        monkeypatch.setattr(psutil, "net_connections", lambda kind="inet": connections)
        monkeypatch.setattr(
            psutil, "Process", lambda pid: SimpleNamespace(name=lambda: PROCESSES[pid])
        )

    return set_host


# --- parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uuid", "kind"),
    [
        ("CRYPT-LUKS2-9da5e448f7084eb99757580ef3dd68c8-sda5_crypt", "LUKS2"),
        ("CRYPT-LUKS1-5b0e7c2a91d34f6e8a1b2c3d4e5f6a7b-home_crypt", "LUKS1"),
        ("CRYPT-PLAIN-cryptswap", "plain"),
        ("CRYPT-BITLK-0f1e2d3c4b5a69788796a5b4c3d2e1f0-usb", "other"),
        ("CRYPT-VERITY-0f1e2d3c4b5a69788796a5b4c3d2e1f0-root", None),  # integrity only
        ("CRYPT-INTEGRITY-data", None),
        ("CRYPT-SUBDEV-9da5e448f7084eb99757580ef3dd68c8-x_dif", None),
        ("LVM-Xq3cL7dUeMkP0sR2tV9wY1zA4bC6dE8fgH5jK7lM9nP1qR3sT5uV7wX9yZ1aB3cD", None),
        (None, None),
    ],
)
def test_crypt_kind(uuid: str | None, kind: str | None) -> None:
    assert crypt_kind(uuid) == kind


def test_parse_recorded_lsblk_of_an_unencrypted_vm() -> None:
    nodes = parse_lsblk(fixture_text("encryption", "lsblk-plain-vda.json"))
    assert [(n.name, n.type, n.mountpoint) for n in nodes] == [
        ("zram0", "disk", None),
        ("vda", "disk", "/"),
    ]
    assert lsblk_mount_encrypted(nodes, "/") is False
    assert lsblk_mount_encrypted(nodes, "/srv") is None


def test_lsblk_sees_root_through_lvm_on_luks() -> None:
    nodes = parse_lsblk(fixture_text("encryption", "luks-lvm", "lsblk.json"))
    assert lsblk_mount_encrypted(nodes, "/") is True
    assert lsblk_mount_encrypted(nodes, "/boot") is False


def test_parse_lsblk_rejects_other_json() -> None:
    with pytest.raises(ValueError):
        parse_lsblk('{"devices": []}')


def test_parse_proc_swaps_and_crypttab() -> None:
    assert parse_proc_swaps(fixture_text("encryption", "proc_swaps_empty")) == []
    swaps = parse_proc_swaps(fixture_text("encryption", "plain-root", "proc", "swaps"))
    assert swaps == [("/dev/dm-0", "partition")]
    entries = parse_crypttab(fixture_text("encryption", "plain-root", "etc", "crypttab"))
    assert [(e.name, e.device, e.kind) for e in entries] == [
        ("cryptswap", "/dev/sda2", "plain"),
        ("home_crypt", "UUID=5b0e7c2a-91d3-4f6e-8a1b-2c3d4e5f6a7b", "other"),
    ]
    assert entries[0].options[0] == "swap"


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")


def test_plaintext_services_selects_exposed_cleartext_ports() -> None:
    sockets = [
        ListeningSocket(protocol="tcp", address="0.0.0.0", port=21, process="vsftpd"),
        ListeningSocket(protocol="tcp", address="::", port=8080, process="java"),
        ListeningSocket(protocol="tcp", address="192.168.1.10", port=5432, process="postgres"),
        ListeningSocket(protocol="tcp", address="0.0.0.0", port=5901, process="Xvnc"),
        ListeningSocket(protocol="tcp", address="127.0.0.1", port=6379, process="redis-server"),
        ListeningSocket(protocol="tcp", address="0.0.0.0", port=25, process="master"),
        ListeningSocket(protocol="udp", address="0.0.0.0", port=514, process="rsyslogd"),
        ListeningSocket(protocol="tcp", address="0.0.0.0", port=22, process="sshd"),
    ]
    assert plaintext_services(sockets) == [
        PlaintextService(address="0.0.0.0", port=21, service="ftp", process="vsftpd"),
        PlaintextService(
            address="192.168.1.10", port=5432, service="postgresql (TLS not verified)",
            process="postgres",
        ),
        PlaintextService(address="0.0.0.0", port=5901, service="vnc", process="Xvnc"),
        PlaintextService(
            address="::", port=8080, service="http (plain HTTP listener)", process="java"
        ),
    ]
    assert 25 not in PLAINTEXT_PORTS  # SMTP is never judged from the socket table


# --- the probe, live -------------------------------------------------------------------


def test_encrypted_lvm_host_as_root(tmp_path: Path, host) -> None:
    host(mounts_of("luks-lvm"), LOOPBACK_ONLY)
    runner = FakeRunner({LSBLK: result(fixture_text("encryption", "luks-lvm", "lsblk.json"))})
    section = probe(ctx_for(copy_root(tmp_path, "luks-lvm"), runner))
    assert section.status == "ok"
    assert section.root_encrypted is True
    assert section.swap_encrypted is True
    mapper = "/dev/mapper/sda5_crypt"
    assert section.volumes == [
        EncryptedVolume(name="sda5_crypt", device=mapper, kind="LUKS2", mountpoint="/"),
        EncryptedVolume(name="sda5_crypt", device=mapper, kind="LUKS2", mountpoint="/srv"),
        EncryptedVolume(name="sda5_crypt", device=mapper, kind="LUKS2", mountpoint="[SWAP]"),
    ]
    assert section.plaintext_services == []
    assert section.notes == []  # crypttab's only entry is open; lsblk added nothing new
    assert runner.ran(LSBLK)


def test_plain_root_with_exposed_cleartext_services(tmp_path: Path, host) -> None:
    host(mounts_of("plain-root"), EXPOSED)
    section = probe(ctx_for(copy_root(tmp_path, "plain-root"), FakeRunner()))
    assert section.status == "ok"
    assert section.root_encrypted is False
    assert section.swap_encrypted is True  # plain dm-crypt with a random key
    assert [(v.name, v.kind, v.mountpoint) for v in section.volumes] == [
        ("cryptswap", "plain", "[SWAP]"),
        ("home_crypt", "LUKS1", "/home"),
    ]
    assert [(s.address, s.port, s.service, s.process) for s in section.plaintext_services] == [
        ("0.0.0.0", 23, "telnet", "inetd"),
        ("::", 80, "http (plain HTTP listener)", "apache2"),
        ("10.0.0.5", 3306, "mysql (TLS not verified)", "mariadbd"),
    ]


def test_unencrypted_swap_file_takes_its_filesystem(tmp_path: Path, host) -> None:
    root = copy_root(tmp_path, "plain-root")
    write(root, "/proc/swaps", "Filename Type Size Used Priority\n/swapfile file 1048572 0 -2\n")
    host(mounts_of("plain-root"), [])
    section = probe(ctx_for(root, FakeRunner()))
    assert section.swap_encrypted is False
    assert ("cryptswap", None) in [(v.name, v.mountpoint) for v in section.volumes]


def test_lsblk_missing_is_fine_when_sysfs_is_readable(tmp_path: Path, host) -> None:
    host(mounts_of("luks-lvm"), [])
    runner = FakeRunner()  # lsblk not installed
    section = probe(ctx_for(copy_root(tmp_path, "luks-lvm"), runner))
    assert section.status == "ok" and section.root_encrypted is True
    assert runner.ran(LSBLK)


def test_lsblk_fallback_without_sysfs(tmp_path: Path, host) -> None:
    root = copy_root(tmp_path, "luks-lvm")
    shutil.rmtree(root / "sys")
    host(mounts_of("luks-lvm"), [])
    runner = FakeRunner({LSBLK: result(fixture_text("encryption", "luks-lvm", "lsblk.json"))})
    section = probe(ctx_for(root, runner))
    assert section.status == "ok"
    assert section.root_encrypted is True
    assert [(v.name, v.kind, v.mountpoint) for v in section.volumes] == [
        ("sda5_crypt", "other", "/"),
        ("sda5_crypt", "other", "[SWAP]"),
        ("sda5_crypt", "other", "/srv"),
    ]
    assert "/sys/block unreadable" in section.notes
    assert "/ decided from lsblk" in section.notes


def test_no_sysfs_and_no_lsblk_is_unknown(tmp_path: Path, host) -> None:
    host([], [])
    section = probe(ctx_for(make_root(tmp_path), FakeRunner()))
    assert section.status == "unknown"
    assert section.reason == "neither /sys/block nor lsblk could be read"


def test_lsblk_timeout_is_noted(tmp_path: Path, host) -> None:
    root = copy_root(tmp_path, "luks-lvm")
    shutil.rmtree(root / "sys")
    host(mounts_of("luks-lvm"), [])
    runner = FakeRunner({LSBLK: CommandTimeout(LSBLK.split(), 10)})
    section = probe(ctx_for(root, runner))
    assert section.status == "unknown"
    assert any("did not finish within 10s" in n for n in section.notes)


def test_lsblk_timeout_with_sysfs_keeps_the_facts(tmp_path: Path, host) -> None:
    host(mounts_of("plain-root"), [])
    runner = FakeRunner({LSBLK: CommandTimeout(LSBLK.split(), 10)})
    section = probe(ctx_for(copy_root(tmp_path, "plain-root"), runner))
    assert section.status == "ok" and section.root_encrypted is False
    assert any("did not finish" in n for n in section.notes)


def test_non_root_sees_sysfs_but_not_other_users_processes(tmp_path: Path, host) -> None:
    host(mounts_of("plain-root"), [conn("0.0.0.0", 21)])  # no pid without root
    section = probe(ctx_for(copy_root(tmp_path, "plain-root"), FakeRunner(), is_root=False))
    assert section.status == "ok" and section.root_encrypted is False
    assert section.plaintext_services == [
        PlaintextService(address="0.0.0.0", port=21, service="ftp", process=None)
    ]
    assert any(n.startswith("not root") for n in section.notes)


def test_socket_table_denied_falls_back_to_proc_net(
    tmp_path: Path, host, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_root(tmp_path, "plain-root")
    # /proc/net/tcp: 0.0.0.0:23 (0x17) in LISTEN (0A), little-endian host byte order
    write(
        root,
        "/proc/net/tcp",
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
        "  timeout inode\n"
        "   0: 00000000:0017 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 1234 1 0000000000000000 100 0 0 10 0\n",
    )
    host(mounts_of("plain-root"), [])

    def denied(kind: str = "inet") -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    section = probe(ctx_for(root, FakeRunner()))
    if socket.htonl(1) != 1:  # the line above is written for a little-endian host
        assert [(s.port, s.process) for s in section.plaintext_services] == [(23, None)]
    assert any("/proc/net" in n for n in section.notes)


def test_container_root_is_undecided(tmp_path: Path, host) -> None:
    host([], [])  # overlay root: psutil lists no block device on /
    section = probe(ctx_for(copy_root(tmp_path, "plain-root"), FakeRunner()))
    assert section.root_encrypted is None
    assert any("no block device is mounted on /" in n for n in section.notes)


# --- the probe, alternate root ---------------------------------------------------------


def test_not_live_reads_crypttab_only(tmp_path: Path) -> None:
    section = probe(ctx_for(copy_root(tmp_path, "plain-root"), live=False))
    assert section.status == "ok"
    assert [(v.name, v.kind, v.mountpoint) for v in section.volumes] == [
        ("cryptswap", "plain", "[SWAP]"),
        ("home_crypt", "other", "/home"),
    ]
    assert section.root_encrypted is None  # "/" is UUID=…: cannot be told offline
    assert section.swap_encrypted is True
    assert section.plaintext_services == []
    assert any("plaintext services need a live host" in n for n in section.notes)
    assert any("crypttab only" in n for n in section.notes)


def test_not_live_root_from_fstab_mapping(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        {
            "/etc/crypttab": "root_crypt UUID=9da5e448-f708-4eb9-9757-580ef3dd68c8 none luks\n",
            "/etc/fstab": "/dev/mapper/root_crypt / ext4 defaults 0 1\n",
        },
    )
    section = probe(ctx_for(root, live=False))
    assert section.root_encrypted is True
    assert section.swap_encrypted is None
    assert section.volumes[0].mountpoint == "/"


def test_not_live_lvm_on_luks_is_undecided(tmp_path: Path) -> None:
    section = probe(ctx_for(copy_root(tmp_path, "luks-lvm"), live=False))
    assert section.root_encrypted is None and section.swap_encrypted is None
    assert [(v.name, v.mountpoint) for v in section.volumes] == [("sda5_crypt", None)]


def test_not_live_empty_image_is_unknown(tmp_path: Path) -> None:
    section = probe(ctx_for(tmp_path, live=False))
    assert section.status == "unknown"
    assert section.reason == "the alternate root has no /etc to read"


# --- this machine -------------------------------------------------------------------------


def test_probe_live_machine() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, EncryptionSection)
    EncryptionSection.model_validate(section.model_dump())
    assert section.status in ("ok", "unknown")
