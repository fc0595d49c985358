"""``posture-collector user …`` and ``posture-collector audit``: people and the audit log.

Run by the collector's operator on the collector host, against the database
directly; every change is written to the audit log as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from collector import audit, crud, users
from collector.db import create_db_engine, init_db
from collector.roles import ROLE_LABELS, USER_ROLES, Role, cli_principal
from collector.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]


def _session(settings: Settings) -> Session:
    engine = create_db_engine(settings)
    init_db(engine)
    return Session(engine)


def _read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if getattr(args, "password_prompt", False):
        first = getpass.getpass("Mật khẩu / password: ")
        if getpass.getpass("Nhập lại / again: ") != first:
            raise users.InvalidUser("the two passwords differ")
        return first
    return None


def _agency_id(session: Session, code: str | None) -> int | None:
    if code is None:
        return None
    agency = crud.get_agency_by_code(session, code)
    if agency is None:
        raise crud.NotFound(f"no agency with code {code!r}")
    return agency.id


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        try:
            password = _read_password(args)
            user = users.create_user(
                session,
                username=args.username,
                role=args.role,
                agency_id=_agency_id(session, args.agency),
                password=password,
                display_name=args.name,
            )
        except (users.InvalidUser, crud.CrudError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record(
            session,
            cli_principal(),
            "user.create",
            agency_id=user.agency_id,
            target=f"user:{user.id}",
            detail={"username": user.username, "role": user.role, "password_set": bool(password)},
        )
        session.commit()
        label = ROLE_LABELS[Role(user.role)]["vi"]
        print(f"created user {user.id}: {user.username} — {label}")
    return 0


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        rows = users.list_users(session)
        if not rows:
            print("no users; add one with: posture-collector user add USERNAME --role …")
        for user in rows:
            state = "disabled" if user.disabled_at else "active"
            agency = f"agency {user.agency_id}" if user.agency_id else "province"
            print(f"{user.id}\t{user.username}\t{user.role}\t{agency}\t{state}")
    return 0


def cmd_user_update(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        user = users.get_user_by_name(session, args.username)
        if user is None:
            print(f"error: no user {args.username!r}", file=sys.stderr)
            return 1
        changes: dict[str, Any] = {}
        try:
            if args.action == "password":
                changes["password"] = _read_password(args)
                if changes["password"] is None:
                    raise users.InvalidUser("give --password-stdin or --password-prompt")
            else:
                changes["disabled"] = args.action == "disable"
            changed = users.update_user(session, user, **changes)
        except users.InvalidUser as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if changed:
            audit.record(
                session,
                cli_principal(),
                "user.update",
                agency_id=user.agency_id,
                target=f"user:{user.id}",
                detail={"changed": changed},
            )
        session.commit()
        print(f"{user.username}: {', '.join(changed) or 'nothing changed'}")
    return 0


def cmd_user_token(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        user = users.get_user_by_name(session, args.username)
        if user is None:
            print(f"error: no user {args.username!r}", file=sys.stderr)
            return 1
        lifetime = timedelta(days=args.days) if args.days else None
        try:
            issued = users.issue_token(session, user, label=args.label, lifetime=lifetime)
        except users.InvalidUser as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record(
            session,
            cli_principal(),
            "user.token_issue",
            agency_id=user.agency_id,
            target=f"user:{user.id}",
            detail={"token_id": issued.row.id, "label": args.label},
        )
        session.commit()
        print(f"API token for {user.username}; shown only once:", file=sys.stderr)
        print(issued.token)
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        try:
            agency_id = _agency_id(session, args.agency)
        except crud.NotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        events = audit.list_events(
            session, agency_id=agency_id, action=args.action, limit=args.limit
        )
        for event in events:
            if args.json:
                print(
                    json.dumps(
                        {
                            "at": event.at.isoformat(),
                            "actor": event.actor,
                            "role": event.actor_role,
                            "agency_id": event.agency_id,
                            "action": event.action,
                            "target": event.target,
                            "detail": event.detail,
                            "source": event.source,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                print(
                    f"{event.at:%Y-%m-%d %H:%M:%S}\t{event.actor}\t{event.action}\t"
                    f"{event.target or '-'}\t{event.source or '-'}"
                )
    return 0


def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    group.add_argument("--password-prompt", action="store_true", help="ask for the password")


def register(sub: Any) -> None:
    """Add the ``user`` and ``audit`` subcommands to the main parser."""
    user = sub.add_parser("user", help="manage users (sysadmins, reviewers) and their API tokens")
    user_sub = user.add_subparsers(dest="user_command", required=True)

    add = user_sub.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in USER_ROLES])
    add.add_argument("--agency", metavar="CODE", help="the agency of an agency_admin")
    add.add_argument("--name", help="display name, e.g. 'Nguyễn Văn A — Phòng CNTT'")
    _password_options(add)
    add.set_defaults(func=cmd_user_add)

    user_sub.add_parser("list", help="list users").set_defaults(func=cmd_user_list)

    for action, text in (
        ("disable", "disable a user and revoke their tokens"),
        ("enable", "enable a disabled user"),
        ("password", "set a new password (revokes their tokens)"),
    ):
        p = user_sub.add_parser(action, help=text)
        p.add_argument("username")
        if action == "password":
            _password_options(p)
        p.set_defaults(func=cmd_user_update, action=action)

    token = user_sub.add_parser("token", help="issue an API token for a user (scripts)")
    token.add_argument("username")
    token.add_argument("--label")
    token.add_argument("--days", type=float, default=None, help="lifetime; never expires if unset")
    token.set_defaults(func=cmd_user_token)

    log = sub.add_parser("audit", help="show the audit log of administrative actions")
    log.add_argument("--agency", metavar="CODE")
    log.add_argument("--action", help="action or prefix, e.g. 'waiver.'")
    log.add_argument("--limit", type=int, default=50)
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.set_defaults(func=cmd_audit)
