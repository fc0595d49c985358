"""ProbeContext.cached_run: reuse an expensive command's answer while its inputs are unchanged."""

from __future__ import annotations

import os

from agent.probes import patches
from agent.probes.base import ProbeContext
from tests.probekit import FakeRunner, ctx_for, make_root, result

SIM = "Inst openssl [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])\n"
UPGRADE = ["apt-get", "-s", "upgrade"]


def counting_ctx(tmp_path, runner):
    root = make_root(
        tmp_path, {"/var/lib/dpkg/status": "Package: a\n", "/var/lib/apt/lists/x": "1"}
    )
    return root, ProbeContext(
        root=root, runner=runner, cache_dir=tmp_path / "cache", process_names=lambda: set()
    )


def test_result_is_reused_until_an_input_changes(tmp_path):
    runner = FakeRunner({"apt-get": result(SIM)})
    root, ctx = counting_ctx(tmp_path, runner)
    inputs = ("/var/lib/dpkg/status", "/var/lib/apt/lists")
    first = ctx.cached_run(["apt-get", "-s", "upgrade"], 5, inputs)
    second = ctx.cached_run(["apt-get", "-s", "upgrade"], 5, inputs)
    assert first.stdout == second.stdout and len(runner.calls) == 1

    # apt-get update drops a new list file: the folder changed, the command runs again
    (root / "var/lib/apt/lists/y").write_text("2")
    ctx.cached_run(["apt-get", "-s", "upgrade"], 5, inputs)
    assert len(runner.calls) == 2

    # a package is installed: dpkg status changes size and mtime
    status = root / "var/lib/dpkg/status"
    status.write_text("Package: a\n\nPackage: b\n")
    os.utime(status, ns=(1, 1))
    ctx.cached_run(["apt-get", "-s", "upgrade"], 5, inputs)
    assert len(runner.calls) == 3


def test_failures_are_not_cached_and_no_cache_dir_means_no_reuse(tmp_path):
    runner = FakeRunner({"apt-get": result("", returncode=100, stderr="E: broken")})
    _, ctx = counting_ctx(tmp_path, runner)
    for _ in range(2):
        assert ctx.cached_run(UPGRADE, 5, ("/var/lib/dpkg/status",)).returncode == 100
    assert len(runner.calls) == 2

    ok = FakeRunner({"apt-get": result("")})
    (tmp_path / "p").mkdir()
    plain = ctx_for(make_root(tmp_path / "p"), ok)
    for _ in range(2):
        plain.cached_run(["apt-get", "-s", "upgrade"], 5, ("/var/lib/dpkg/status",))
    assert len(ok.calls) == 2


def test_apt_probe_uses_the_cache(tmp_path):
    runner = FakeRunner({"apt-get -s": result(SIM)})
    root, ctx = counting_ctx(tmp_path, runner)
    for binary in ("/usr/bin/dpkg", "/usr/bin/apt-get"):
        (root / binary.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / binary.lstrip("/")).write_text("")
    first = patches.probe(ctx)
    second = patches.probe(ctx)
    assert first.security_pending_count == second.security_pending_count == 1
    assert sum(1 for argv, _ in runner.calls if argv[0] == "apt-get") == 1
