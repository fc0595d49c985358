"""``posture-collector agentless add|trust|collect|run-due`` (registered by collector.cli).

paramiko is imported only when a command runs, so the collector CLI works
without the ``agentless`` extra.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlmodel import Session

from collector import crud
from collector.db import create_db_engine, init_db
from collector.settings import Settings


def _session(settings: Settings) -> Session:
    engine = create_db_engine(settings)
    init_db(engine)
    return Session(engine)


def _service() -> Any:
    try:
        from collector.agentless import service
    except ImportError as exc:
        raise SystemExit(
            f"error: agentless collection needs the 'agentless' extra (paramiko): {exc}"
        ) from exc
    return service


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    service = _service()
    with _session(settings) as session:
        agency = crud.get_agency_by_code(session, args.agency)
        if agency is None or agency.id is None:
            print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
            return 1
        try:
            target = service.create_target(
                session,
                agency_id=agency.id,
                address=args.address,
                port=args.port,
                username=args.user,
                key_path=args.key,
                role=args.role,
                interval_minutes=args.interval,
            )
        except service.AgentlessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"created agentless target {target.id}: {args.user}@{args.address}:{args.port}; "
            f"its host key is not trusted yet: posture-collector agentless trust {target.id}"
        )
    return 0


def cmd_trust(args: argparse.Namespace, settings: Settings) -> int:
    service = _service()
    from collector.agentless import ssh

    with _session(settings) as session:
        try:
            target = service.get_target(session, args.target)
            if args.fingerprint is None:
                key = service.presented_host_key(target)
                print(f"{target.address}:{target.port} presents {key.key_type} {key.sha256}")
                if target.host_key_sha256:
                    print(f"currently pinned: {target.host_key_type} {target.host_key_sha256}")
                print(
                    "verify this fingerprint out of band (ssh-keygen -lf "
                    "/etc/ssh/ssh_host_*_key.pub on the server), then run: "
                    f"posture-collector agentless trust {target.id} --fingerprint {key.sha256}"
                )
                return 2
            key = service.trust_host_key(
                session, target, fingerprint=args.fingerprint, trusted_by=args.by
            )
        except (service.AgentlessError, ssh.SshError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"trusted {key.key_type} {key.sha256} for target {target.id}")
    return 0


def _print_result(target_id: int, result: Any) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in result.summary.items())
    print(f"target {target_id}: report {result.report_id} {result.status} (host {result.host_id})")
    if counts:
        print(f"  findings: {counts}")


def cmd_collect(args: argparse.Namespace, settings: Settings) -> int:
    service = _service()
    from collector.agentless import ssh
    from collector.ingest import IngestError

    with _session(settings) as session:
        try:
            target = service.get_target(session, args.target)
            result = service.collect_target(session, target, settings=settings)
        except (service.AgentlessError, ssh.SshError, IngestError) as exc:
            print(f"error: {getattr(exc, 'detail', exc)}", file=sys.stderr)
            return 1
        _print_result(args.target, result)
    return 0


def cmd_run_due(args: argparse.Namespace, settings: Settings) -> int:
    service = _service()
    failed = 0
    with _session(settings) as session:
        outcomes = service.run_due(session, settings=settings)
        for outcome in outcomes:
            if outcome.error is not None:
                failed += 1
                print(f"target {outcome.target_id}: error: {outcome.error}", file=sys.stderr)
            else:
                _print_result(outcome.target_id, outcome.result)
        if not outcomes:
            print("no agentless target is due")
    return 1 if failed else 0


def register(sub: Any) -> None:
    """Add the ``agentless`` command group to the collector's subparsers."""
    agentless = sub.add_parser("agentless", help="collect servers over SSH without an agent")
    group = agentless.add_subparsers(dest="agentless_command", required=True)

    add = group.add_parser("add", help="register a server collected over SSH")
    add.add_argument("--agency", required=True, metavar="CODE")
    add.add_argument("--address", required=True)
    add.add_argument("--port", type=int, default=22)
    add.add_argument("--user", required=True, help="login user (key authentication only)")
    add.add_argument("--key", required=True, help="private key file on the collector")
    add.add_argument("--role", choices=("server", "workstation", "unknown"), default="server")
    add.add_argument("--interval", type=int, default=1440, help="minutes between collections")
    add.set_defaults(func=cmd_add)

    trust = group.add_parser("trust", help="show the server's host key; with --fingerprint, pin it")
    trust.add_argument("target", type=int)
    trust.add_argument("--fingerprint", default=None, help="the SHA256:… you verified")
    trust.add_argument("--by", default="cli", help="who trusted it (recorded)")
    trust.set_defaults(func=cmd_trust)

    collect = group.add_parser("collect", help="collect one target now")
    collect.add_argument("target", type=int)
    collect.set_defaults(func=cmd_collect)

    due = group.add_parser("run-due", help="collect every trusted target that is due (cron)")
    due.set_defaults(func=cmd_run_due)
