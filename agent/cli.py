"""posture-agent: collect | enroll | run | status | rotate-credential | schema | netprobe."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from agent.config import AgentConfig, Enrollment, read_status


def _load_config(args: argparse.Namespace) -> AgentConfig:
    config = AgentConfig.load(args.config)
    if args.state_dir:
        config.state_dir = args.state_dir
    if getattr(args, "role", None):
        config.role = args.role
    return config


def cmd_collect(args: argparse.Namespace) -> int:
    from agent.collect import collect
    from agent.probes.base import ProbeContext

    config = _load_config(args)
    ctx = ProbeContext(cache_dir=config.cache_dir)
    if args.root and args.root != Path("/"):
        ctx = ProbeContext(root=args.root, live=False)
    report = collect(ctx, role=config.role, timeout=config.probe_timeout)
    text = report.model_dump_json(indent=2, exclude_none=False)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from agent.client import EnrollmentError, enroll
    from agent.collect import host_identity
    from agent.probes.base import ProbeContext

    config = _load_config(args)
    identity = host_identity(ProbeContext(), role=config.role)
    try:
        enrollment = enroll(
            args.collector, args.token, identity, config, ca_fingerprint=args.ca_fingerprint
        )
    except EnrollmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agency = enrollment.agency
    print(
        f"enrolled host {identity.hostname} (host id {enrollment.host_id}) in "
        f"{agency.get('name')} [{agency.get('code')}], Mức độ {agency.get('level')}; "
        f"credential saved in {Enrollment.path(config.state_dir)}"
    )
    if enrollment.ca_fingerprint:
        print(
            f"collector CA pinned ({enrollment.ca_fingerprint}), saved in "
            f"{config.pinned_ca_path}: it is the only CA trusted for this collector"
        )
    elif enrollment.collector_url.startswith("http://"):
        print(
            "warning: plain http: the credential and the reports are not encrypted",
            file=sys.stderr,
        )
    return 0


def cmd_rotate_credential(args: argparse.Namespace) -> int:
    from agent.client import CredentialRejected, RotationError, TransportError, rotate_credential

    config = _load_config(args)
    if Enrollment.load(config.state_dir) is None:
        print(
            f"error: this host is not enrolled (no {Enrollment.path(config.state_dir)})",
            file=sys.stderr,
        )
        return 2
    try:
        rotation = rotate_credential(config)
    except CredentialRejected as exc:
        print(f"error: the collector refused the current credential: {exc}", file=sys.stderr)
        return 1
    except (RotationError, TransportError) as exc:
        print(f"error: {exc}; the current credential stays in use", file=sys.stderr)
        return 1
    where = Enrollment.path(config.state_dir)
    if rotation.confirmed:
        state = "the previous credential is revoked"
    elif rotation.old_valid_until is not None:
        state = (
            "the previous credential stays valid until the new one is first used, at the "
            f"latest until {rotation.old_valid_until.isoformat()}"
        )
    else:
        state = "the previous credential stays valid until the new one is first used"
    print(f"new credential (id {rotation.enrollment.agent_id}) saved in {where}; {state}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agent.service import run_forever

    config = _load_config(args)
    if args.interval:
        config.interval_seconds = args.interval
    enrollment = Enrollment.load(config.state_dir)
    if enrollment is None:
        print(
            f"error: this host is not enrolled (no {Enrollment.path(config.state_dir)}); "
            "run `posture-agent enroll --collector URL --token TOKEN` first",
            file=sys.stderr,
        )
        return 2
    return run_forever(config, enrollment, once=args.once)


def cmd_status(args: argparse.Namespace) -> int:
    from agent.service import spool_for

    config = _load_config(args)
    enrollment = Enrollment.load(config.state_dir)
    status = read_status(config.state_dir)
    spool = spool_for(config)
    evictions = spool.evictions()
    lost = sum(e.count for e in evictions)
    unsent = [e for e in evictions if e.reported_at is None]
    acked_id, acked_packages = spool.acked_inventory()
    rows = [
        ("enrolled", "yes" if enrollment else "no"),
        ("collector", enrollment.collector_url if enrollment else "-"),
        (
            "collector CA",
            f"pinned {enrollment.ca_fingerprint}"
            if enrollment and enrollment.ca_fingerprint
            else "not pinned (ca_file or system trust store)",
        ),
        ("host id", str(enrollment.host_id) if enrollment else "-"),
        ("last collection", status.get("last_collection_at", "never")),
        ("last delivery", status.get("last_delivery_at", "never")),
        ("last error", status.get("last_error") or "-"),
        ("spool depth", str(spool.depth())),
        (
            "spool size",
            f"{spool.size_bytes()} bytes (max {config.spool_max_reports} reports, "
            f"{config.spool_max_bytes} bytes)",
        ),
        (
            "reports evicted",
            str(lost)
            + (
                f" ({sum(e.count for e in unsent)} not yet reported to the collector)"
                if unsent
                else ""
            ),
        ),
        ("rejected reports", str(len(spool.rejected()))),
        (
            "inventory acked",
            f"{len(acked_packages)} packages in report {acked_id}"
            if acked_id and acked_packages is not None
            else "none (next report is full)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for e in evictions:
        state = f"reported in {e.reported_in}" if e.reported_at else "not yet reported"
        print(
            f"  evicted {e.count} report(s) collected {e.first_collected_at} .. "
            f"{e.last_collected_at} ({e.first_report_id} .. {e.last_report_id}), {state}"
        )
    for report_id, when, code, error in spool.rejected():
        print(f"  rejected {report_id} at {when} (HTTP {code}): {error}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from agent.report import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
    return 0


def cmd_netprobe(args: argparse.Namespace) -> int:
    from agent.client import (
        CredentialRejected,
        ProbeExchangeError,
        fetch_probe_plan,
        post_probe_results,
    )
    from agent.netprobe.plan import ProbePlan
    from agent.netprobe.runner import ProbeError, run_plan

    def enrolled() -> tuple[AgentConfig, Enrollment] | None:
        config = _load_config(args)
        enrollment = Enrollment.load(config.state_dir)
        if enrollment is None:
            print(
                f"error: this host is not enrolled (no {Enrollment.path(config.state_dir)})",
                file=sys.stderr,
            )
            return None
        return config, enrollment

    agent: tuple[AgentConfig, Enrollment] | None = None
    if args.plan:
        try:
            plan = ProbePlan.model_validate_json(args.plan.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the probe plan {args.plan}: {exc}", file=sys.stderr)
            return 2
    else:
        if (agent := enrolled()) is None:
            return 2
        try:
            fetched = fetch_probe_plan(agent[1], agent[0])
        except (ProbeExchangeError, CredentialRejected) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if fetched is None:
            print("no probe plan for this agent")
            return 0
        plan = fetched
    try:
        results = run_plan(plan, method=args.method)
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        sys.stdout.write(results.model_dump_json(indent=2) + "\n")
        return 0
    if agent is None and (agent := enrolled()) is None:
        return 2
    try:
        post_probe_results(agent[1], agent[0], results)
    except (ProbeExchangeError, CredentialRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ports = sum(len(r.ports) for r in results.results)
    print(
        f"probe plan {plan.plan_id}: {len(results.results)} target(s), {ports} port(s) "
        f"probed by {results.method}, {len(results.refused)} refused; results delivered"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posture-agent", description="Security posture agent (Quy chế 02/2013, Điều 16–19)."
    )
    parser.add_argument("--config", type=Path, help="agent.toml (default: /etc/posture-agent/)")
    parser.add_argument("--state-dir", type=Path, help="override state_dir of the config")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collect", help="collect facts and print the report as JSON")
    p.add_argument("--root", type=Path, help="read file-based facts from this root (offline audit)")
    p.add_argument("--role", choices=["server", "workstation"])
    p.add_argument("-o", "--output", type=Path, help="write the report to a file")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("enroll", help="enroll this host with a collector")
    p.add_argument("--collector", required=True, help="collector URL")
    p.add_argument(
        "--token",
        required=True,
        help="agency enrollment token (pe_…), or pe_…#sha256:… with the CA fingerprint",
    )
    p.add_argument(
        "--ca-fingerprint",
        metavar="sha256:HEX",
        help="pin the collector's CA (printed with the token): it becomes the only CA "
        "trusted for this collector",
    )
    p.add_argument("--role", choices=["server", "workstation"])
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser(
        "rotate-credential", help="replace this agent's credential with a new one now"
    )
    p.set_defaults(func=cmd_rotate_credential)

    p = sub.add_parser("run", help="collect on an interval and push to the collector")
    p.add_argument("--once", action="store_true", help="one collection and delivery, then exit")
    p.add_argument("--interval", type=float, help="seconds between collections")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="last collection, last delivery and spool depth")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("schema", help="print the JSON Schema of the report (docs/)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("netprobe", help="run this agent's segmentation probe plan")
    p.add_argument(
        "--method",
        choices=["auto", "syn", "connect"],
        default="auto",
        help="syn needs root and scapy; auto picks syn when it can",
    )
    p.add_argument("--plan", type=Path, help="read the plan from a JSON file, not the collector")
    p.add_argument("--dry-run", action="store_true", help="print the results, do not send them")
    p.set_defaults(func=cmd_netprobe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ValueError as exc:  # configuration errors
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
