"""``posture-collector``: run the collector and administer it from the server.

The admin subcommands talk to the database directly (they are run by the
collector's operator on the collector host), using the same settings as the
server (``POSTURE_DATABASE_URL`` / ``DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from collector import audit, crud, incidents_cli, reports_cli, users_cli
from collector.agentless import cli as agentless_cli
from collector.db import create_db_engine, init_db
from collector.models import MAX_LEVEL, MIN_LEVEL
from collector.notify import cli as notify_cli
from collector.roles import cli_principal
from collector.settings import Settings


def _session(settings: Settings) -> Session:
    engine = create_db_engine(settings)
    init_db(engine)
    return Session(engine)


def _level(value: str) -> int:
    try:
        level = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"level must be an integer, got {value!r}") from exc
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise argparse.ArgumentTypeError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}")
    return level


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collector.app import create_app

    if settings.admin_token_value is None:
        print(
            "note: POSTURE_ADMIN_TOKEN is not set; sign in as a user "
            "(add one with: posture-collector user add NAME --role province_admin "
            "--password-prompt)",
            file=sys.stderr,
        )
    if getattr(args, "tls_dir", None) is not None:
        settings = settings.model_copy(update={"tls_dir": args.tls_dir})
    ssl: dict[str, str] = {}
    if settings.tls_dir is not None:
        from collector import tls

        try:
            certfile, keyfile = tls.server_files(settings.tls_dir)
        except tls.TlsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        ssl = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    workers = getattr(args, "workers", 1) or 1
    if workers > 1:
        # Each worker process builds its own app from the environment (the settings
        # object cannot cross processes): pass what the command line changed.
        if settings.tls_dir is not None:
            os.environ["POSTURE_TLS_DIR"] = str(settings.tls_dir)
        uvicorn.run(
            "collector.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            **ssl,  # type: ignore[arg-type]
        )
        return 0
    uvicorn.run(create_app(settings), host=args.host, port=args.port, **ssl)  # type: ignore[arg-type]
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the database migrations (``alembic upgrade``); the server also does at start."""
    from collector.db import migrate

    engine = create_db_engine(settings)
    try:
        migrate(engine, args.revision)
    finally:
        engine.dispose()
    print(f"database migrated to {args.revision}")
    return 0


def cmd_agency_create(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        event = audit.record(
            session,
            cli_principal(),
            "agency.create",
            detail={"code": args.code, "name": args.name, "level": args.level},
        )
        try:
            agency = crud.create_agency(session, code=args.code, name=args.name, level=args.level)
        except (crud.AlreadyExists, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.complete(session, event, target=f"agency:{agency.id}", agency_id=agency.id)
        print(f"created agency {agency.id}: {agency.code} — {agency.name} (level {agency.level})")
    return 0


def cmd_agency_list(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        agencies = crud.list_agencies(session)
        if not agencies:
            print("no agencies; create one with: posture-collector agency create …")
            return 0
        for agency in agencies:
            print(f"{agency.id}\t{agency.code}\tlevel {agency.level}\t{agency.name}")
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        agency = crud.get_agency_by_code(session, args.agency)
        if agency is None:
            print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
            return 1
        event = audit.record(
            session,
            cli_principal(),
            "enrollment_token.create",
            agency_id=agency.id,
            detail={"label": args.label, "expires_in_hours": args.expires_in_hours},
        )
        issued = crud.create_enrollment_token(
            session, agency, label=args.label, expires_in_hours=args.expires_in_hours
        )
        audit.complete(session, event, target=f"enrollment_token:{issued.row.id}")
        expires = issued.row.expires_at.isoformat() if issued.row.expires_at else "never"
        print(
            f"enrollment token for {agency.code} (expires: {expires}); shown only once:",
            file=sys.stderr,
        )
        print(issued.token)
        _print_enroll_hints(issued.token, settings)
    return 0


def _print_enroll_hints(token: str, settings: Settings) -> None:
    """The CA pin and the enroll command (stderr: stdout stays the bare token)."""
    from collector import tls

    pin = tls.enrollment_fingerprint(settings)
    if pin:
        print(f"collector CA fingerprint: {pin}", file=sys.stderr)
        print(f"token with pin (one variable, e.g. for Ansible): {token}#{pin}", file=sys.stderr)
    else:
        print(
            "no collector CA configured (POSTURE_TLS_DIR / POSTURE_TLS_CA_FILE): agents "
            "will verify the collector with their system trust store or ca_file",
            file=sys.stderr,
        )
    print("enroll with: " + tls.enroll_command(token, pin, settings.public_url), file=sys.stderr)


def cmd_tls_init(args: argparse.Namespace, settings: Settings) -> int:
    """``tls init``: create the CA and server certificate; ``tls renew``: re-issue the latter."""
    from collector import tls

    renew = args.tls_command == "renew"
    try:
        result = tls.init(
            args.dir,
            args.host or (),
            args.ip or (),
            days=args.days,
            ca_days=args.ca_days,
            renew=renew,
        )
    except tls.TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = result.files
    if result.ca_created:
        print(f"created CA {files.ca_cert} (key {files.ca_key}, mode 0600)", file=sys.stderr)
    else:
        print(f"kept the existing CA {files.ca_cert}", file=sys.stderr)
    names = ", ".join([*result.dns_names, *result.ip_addresses])
    if result.server_issued:
        print(
            f"issued server certificate {files.server_cert} for {names}, valid until "
            f"{result.server_not_after:%Y-%m-%d}; restart `posture-collector serve` to use it",
            file=sys.stderr,
        )
    else:
        print(
            f"kept the existing server certificate {files.server_cert} ({names}, valid until "
            f"{result.server_not_after:%Y-%m-%d}); re-issue it with `posture-collector tls "
            "renew`",
            file=sys.stderr,
        )
    print(result.fingerprint)
    return 0


def cmd_tls_fingerprint(args: argparse.Namespace, settings: Settings) -> int:
    """Print the sha256 fingerprint agents pin: of a CA file, a TLS directory or the settings."""
    from collector import tls

    path: Path | None
    if args.ca_file is not None:
        path = args.ca_file
    elif args.dir is not None:
        path = tls.TlsFiles(args.dir).ca_cert
    else:
        path = tls.published_ca_path(settings)
    if path is None:
        print(
            "error: no CA to fingerprint: give --ca-file or --dir, or set POSTURE_TLS_DIR / "
            "POSTURE_TLS_CA_FILE",
            file=sys.stderr,
        )
        return 2
    try:
        print(tls.file_fingerprint(path))
    except tls.TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_coverage(args: argparse.Namespace, settings: Settings) -> int:
    """How each requirement is verified; exit 1 if any requirement is unmapped."""
    import json

    from policies import framework as frameworks
    from policies.coverage import coverage, coverage_table, unmapped

    name = args.framework or frameworks.DEFAULT_FRAMEWORK
    try:
        fw = frameworks.load_framework(name)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: framework {name!r}: {exc}", file=sys.stderr)
        return 2
    rows = coverage(fw)
    missing = unmapped(rows)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=2))
    else:
        from rich.console import Console

        Console().print(coverage_table(rows, fw.id, args.lang))
    if missing:
        print(
            f"unmapped requirements ({len(missing)}): " + ", ".join(r.id for r in missing),
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_reevaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate every host's latest stored report again with the current policies."""
    from collector.reevaluate import reevaluate

    with _session(settings) as session:
        agency_id = None
        if args.agency:
            agency = crud.get_agency_by_code(session, args.agency)
            if agency is None:
                print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
                return 1
            agency_id = agency.id
        stats = reevaluate(session, agency_id, settings=settings)
    print(
        f"re-evaluated {stats.reports} report(s) of {stats.hosts} host(s) in "
        f"{stats.agencies} agency(ies): {stats.findings} findings, {stats.changed} changed, "
        f"{stats.skipped} host(s) without a report; {stats.snapshots} snapshot row(s)"
    )
    return 0


def _zone_cidrs(session: Session, agency_id: int) -> list[str] | None:
    """The CIDRs of the agency's declared zones; None without a network model."""
    try:
        from collector import network
    except ImportError:  # the network model is not installed in this build
        return None
    zones = network.zones(session, agency_id)
    if not zones:
        return None
    return [cidr for zone in zones for cidr in zone.cidrs]


def cmd_discover(args: argparse.Namespace, settings: Settings) -> int:
    """Sweep an agency's zones with nmap; store live hosts and flag the unmanaged ones."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from collector.models import utcnow
    from collector.scanner import discovery

    console = Console(stderr=True)
    with _session(settings) as session:
        agency = crud.get_agency_by_code(session, args.agency)
        if agency is None or agency.id is None:
            print(f"error: no agency with code {args.agency!r}", file=sys.stderr)
            return 1
        declared = _zone_cidrs(session, agency.id)
        requested = args.cidr or declared
        if not requested:
            print(
                "lỗi: đơn vị chưa khai báo mô hình mạng; hãy chỉ rõ --cidr / "
                "error: the agency has no network model; give --cidr",
                file=sys.stderr,
            )
            return 2
        try:
            networks = discovery.parse_cidrs(requested)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if declared is not None:
            outside = discovery.outside_zones(networks, declared)
            if outside:
                print(
                    "lỗi: các dải sau nằm ngoài các vùng mạng đã khai báo của đơn vị / "
                    "error: these networks are outside the agency's declared zones: "
                    + ", ".join(map(str, outside)),
                    file=sys.stderr,
                )
                return 2
        cidrs = [str(n) for n in networks]
        labels = {
            "sweep": "Quét tìm máy đang hoạt động / ping sweep",
            "ports": "Quét cổng phổ biến / top-ports scan",
        }
        started = utcnow()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=args.quiet,
        ) as bar:
            tasks: dict[str, int] = {}

            def report(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(labels.get(phase, phase), total=max(total, 1))
                bar.update(tasks[phase], completed=done if total else 1)

            try:
                hosts = discovery.discover(cidrs, top_ports=args.top_ports, progress=report)
            except (discovery.DiscoveryError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        scan = discovery.store_scan(
            session, agency.id, cidrs, hosts, started_at=started, source="collector"
        )
        index = discovery.host_index(session, agency.id)

    table = Table(title=f"{agency.code}: {', '.join(cidrs)}")
    for column in ("Địa chỉ / Address", "MAC", "Cổng mở / Open ports", "Tác tử / Agent"):
        table.add_column(column)
    unmanaged = 0
    for h in hosts:
        host_id = index.match(h.address, h.mac)
        unmanaged += host_id is None
        table.add_row(
            h.address,
            h.mac or "",
            ", ".join(f"{p}/{n}" + (f" ({s})" if s else "") for p, n, s in h.open_ports),
            index.hostnames.get(host_id, str(host_id))
            if host_id is not None
            else "[bold red]không được quản lý / unmanaged[/]",
        )
    Console().print(table)
    print(
        f"scan {scan.id}: {len(hosts)} máy đang hoạt động / live host(s), "
        f"{unmanaged} không được quản lý / unmanaged"
    )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from collector.demo import main as demo_main

    return demo_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posture-collector",
        description="Central collector of the security posture scanner.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help="serve HTTPS with the certificate of `tls init` (default: POSTURE_TLS_DIR)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the port (PostgreSQL; about one per CPU core)",
    )
    serve.set_defaults(func=cmd_serve)

    tls_parser = sub.add_parser("tls", help="the collector's CA and server certificate")
    tls_sub = tls_parser.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    for action, text in (
        ("init", "create the CA and the server certificate (keeps what exists)"),
        ("renew", "re-issue the server certificate under the same CA"),
    ):
        p = tls_sub.add_parser(action, help=text, description=text)
        p.add_argument("--dir", type=Path, required=True, help="where the files are written")
        p.add_argument(
            "--host",
            action="append",
            default=None,
            help="DNS name of the collector (repeatable; default: this machine's FQDN; "
            "renew: the names of the current certificate)",
        )
        p.add_argument("--ip", action="append", default=None, help="IP address (repeatable)")
        p.add_argument(
            "--days", type=_positive_int, default=365, help="server certificate lifetime"
        )
        p.add_argument(
            "--ca-days", type=_positive_int, default=3650, help="CA lifetime (new CA only)"
        )
        p.set_defaults(func=cmd_tls_init)
    fp = tls_sub.add_parser(
        "fingerprint", help="print the sha256 fingerprint agents pin (--ca-fingerprint)"
    )
    fp.add_argument("--dir", type=Path, default=None, help="a `tls init` directory")
    fp.add_argument(
        "--ca-file", type=Path, default=None, help="any CA certificate (PEM), e.g. Caddy's root"
    )
    fp.set_defaults(func=cmd_tls_fingerprint)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    mig.add_argument("--revision", default="head", help="target revision (default: head)")
    mig.set_defaults(func=cmd_migrate)

    agency = sub.add_parser("agency", help="manage agencies")
    agency_sub = agency.add_subparsers(dest="agency_command", required=True, metavar="ACTION")
    create = agency_sub.add_parser("create", help="create an agency")
    create.add_argument("--code", required=True, help="short unique code, e.g. so-tttt")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--level", required=True, type=_level, help=f"Mức độ ({MIN_LEVEL}–{MAX_LEVEL})"
    )
    create.set_defaults(func=cmd_agency_create)
    listing = agency_sub.add_parser("list", help="list agencies")
    listing.set_defaults(func=cmd_agency_list)

    token = sub.add_parser("token", help="manage enrollment tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    token_create = token_sub.add_parser("create", help="issue an enrollment token")
    token_create.add_argument("--agency", required=True, metavar="CODE")
    token_create.add_argument("--expires-in-hours", type=_positive_float, default=None)
    token_create.add_argument("--label", default=None)
    token_create.set_defaults(func=cmd_token_create)

    demo = sub.add_parser("demo", help="run an end-to-end demonstration")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--level", type=_level, default=3)
    demo.add_argument("--lang", choices=("vi", "en"), default="vi")
    demo.add_argument("--keep", action="store_true", help="keep the demo database")
    demo.add_argument("--db", metavar="PATH", default=None, help="database file to use")
    demo.add_argument(
        "--workdir", metavar="PATH", default=None, help="directory for the run's files"
    )
    demo.add_argument(
        "--role", choices=("server", "workstation"), default=None, help="role of this machine"
    )
    demo.add_argument(
        "--no-serve",
        action="store_true",
        help="exit after printing the verdicts (default: keep serving the dashboard until Ctrl-C)",
    )
    demo.set_defaults(func=cmd_demo)

    cov = sub.add_parser(
        "coverage", help="how each requirement is verified; exit 1 if any is unmapped"
    )
    cov.add_argument("--lang", choices=("vi", "en"), default="vi")
    cov.add_argument("--json", action="store_true", help="print the rows as JSON")
    cov.add_argument("--framework", default=None, help="framework id (default: Bình Dương)")
    cov.set_defaults(func=cmd_coverage)

    disc = sub.add_parser(
        "discover", help="sweep an agency's networks with nmap (live hosts, open ports)"
    )
    disc.add_argument("--agency", required=True, metavar="CODE")
    disc.add_argument(
        "--cidr",
        action="append",
        default=None,
        help="network to sweep (repeatable; default: the agency's declared zones)",
    )
    disc.add_argument("--top-ports", type=int, default=100, help="most common ports to scan")
    disc.add_argument("--quiet", action="store_true", help="no progress bar")
    disc.set_defaults(func=cmd_discover)

    reeval = sub.add_parser(
        "reevaluate", help="evaluate stored reports again with the current policies"
    )
    reeval.add_argument("--agency", metavar="CODE", default=None, help="only this agency")
    reeval.set_defaults(func=cmd_reevaluate)

    agentless_cli.register(sub)
    users_cli.register(sub)
    incidents_cli.register(sub)
    notify_cli.register(sub)
    reports_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, Settings()) or 0)


if __name__ == "__main__":
    sys.exit(main())
