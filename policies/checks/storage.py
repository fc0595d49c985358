"""Điều 17 khoản 1, đoạn 2 (Mức độ 3): "các hệ thống lưu trữ dữ liệu chuyên nghiệp"."""

from __future__ import annotations

from agent.report import RemoteMount, StorageSection
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined


def _section(ctx: EvalContext) -> StorageSection:
    section = ctx.report.storage
    assert section is not None  # the engine does not call a predicate without its section
    return section


def _mount(m: RemoteMount) -> str:
    label = f"{m.fstype} {m.source} → {m.mountpoint}"
    return label if m.mounted is not False else f"{label} (/etc/fstab)"


@check("storage_professional")
def storage_professional(ctx: EvalContext) -> Outcome:
    section = _section(ctx)
    san = [
        f"{label}: {count}"
        for label, count in (
            ("iSCSI", section.iscsi_sessions),
            ("Fibre Channel", section.fc_hosts),
            ("multipath", section.multipath_devices),
        )
        if count
    ]
    mounts = [_mount(m) for m in section.remote_mounts]
    if san or mounts:
        return passed("present", san=san, mounts=mounts)
    counts = (section.iscsi_sessions, section.fc_hosts, section.multipath_devices)
    if any(c is None for c in counts):
        return undetermined("not_observed")
    return failed("none")
