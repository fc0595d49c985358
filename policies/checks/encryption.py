"""Điều 17 khoản 1: important information encrypted at rest and in transit."""

from __future__ import annotations

from agent.report import EncryptionSection, PlaintextService
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined

SWAP = "[SWAP]"


def _section(ctx: EvalContext) -> EncryptionSection:
    section = ctx.report.encryption
    assert section is not None  # the engine does not call a predicate without its section
    return section


def _covered(mountpoint: str, paths: list[str]) -> bool:
    """A mountpoint equal to an important path, or below one (other than "/")."""
    for path in paths:
        base = path.rstrip("/") or "/"
        if mountpoint == base or (base != "/" and mountpoint.startswith(base + "/")):
            return True
    return False


@check("disk_encrypted")
def disk_encrypted(ctx: EvalContext) -> Outcome:
    section = _section(ctx)
    paths: list[str] = list(ctx.param("encryption", "important_paths"))
    if section.root_encrypted:
        return passed("root", paths=paths)
    protected = sorted(
        {
            v.mountpoint
            for v in section.volumes
            if v.mountpoint and v.mountpoint != SWAP and _covered(v.mountpoint, paths)
        }
    )
    if protected:
        return passed("important_volume", mountpoints=protected, paths=paths)
    if section.root_encrypted is False:
        others = sorted({v.mountpoint or v.name for v in section.volumes})
        if others:
            return failed("other_volumes_only", volumes=others, paths=paths)
        return failed("not_encrypted", paths=paths)
    return undetermined("cannot_tell", paths=paths)


def _describe(service: PlaintextService) -> str:
    endpoint = (
        f"[{service.address}]:{service.port}"
        if ":" in service.address
        else f"{service.address}:{service.port}"
    )
    return f"{service.service} {endpoint} ({service.process or '?'})"


@check("no_plaintext_services")
def no_plaintext_services(ctx: EvalContext) -> Outcome:
    section = _section(ctx)
    allowed = {int(p) for p in ctx.param("encryption", "allowed_plaintext_ports")}
    exposed = [s for s in section.plaintext_services if s.port not in allowed]
    if exposed:
        return failed("plaintext", services=[_describe(s) for s in exposed], count=len(exposed))
    # An empty list proves nothing unless the socket table was read: the network
    # section comes from the same live source, in the same run.
    network = ctx.report.network
    if network.status != "ok":
        return undetermined("not_observed", reason=network.reason)
    skipped = sorted({s.port for s in section.plaintext_services})
    if skipped:
        return passed("only_allowed", ports=[str(p) for p in skipped])
    return passed("none")
