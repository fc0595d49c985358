"""Điều 19 khoản 2: "cấu hình cơ sở dữ liệu an toàn" (database servers configured securely)."""

from __future__ import annotations

from agent.report import DatabaseSection, DatabaseServer
from policies.model import Text
from policies.registry import EvalContext, Outcome, check, failed, passed, undetermined

ENGINE_NAMES: dict[str, str] = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mariadb": "MariaDB",
    "redis": "Redis",
    "mongodb": "MongoDB",
}

# Machine-readable issue code (agent) -> what it means, in words.
ISSUE_TEXTS: dict[str, Text] = {
    "pg_trust_remote": Text(
        vi="pg_hba.conf cho phép máy khác kết nối bằng phương thức trust (không cần mật khẩu)",
        en="pg_hba.conf lets other machines connect with method trust (no password)",
    ),
    "pg_trust_local": Text(
        vi="pg_hba.conf cho phép kết nối cục bộ bằng phương thức trust: mọi người dùng trên "
        "máy đăng nhập được với bất kỳ vai trò nào mà không cần mật khẩu",
        en="pg_hba.conf allows local connections with method trust: any user of this "
        "machine can log in as any role without a password",
    ),
    "mysql_skip_grant_tables": Text(
        vi="skip-grant-tables đang bật: ai kết nối được cũng có toàn quyền mà không cần mật khẩu",
        en="skip-grant-tables is on: anyone who can connect gets full privileges without "
        "a password",
    ),
    "redis_no_password": Text(
        vi="chưa đặt mật khẩu (requirepass hoặc ACL cho người dùng default)",
        en="no password is set (requirepass or an ACL for the default user)",
    ),
    "redis_protected_mode_off": Text(
        vi="protected-mode bị tắt trong khi không có mật khẩu",
        en="protected-mode is off while no password is set",
    ),
    "mongodb_authorization_disabled": Text(
        vi="security.authorization chưa bật (enabled): truy cập không cần xác thực",
        en="security.authorization is not enabled: access needs no authentication",
    ),
}


def _section(ctx: EvalContext) -> DatabaseSection:
    section = ctx.report.databases
    assert section is not None  # the engine does not call a predicate without its section
    return section


def _name(server: DatabaseServer) -> str:
    name = ENGINE_NAMES.get(server.engine, server.engine)
    return f"{name} {server.version}" if server.version else name


def _problem(server: DatabaseServer, code: str) -> Text:
    words = ISSUE_TEXTS.get(code, Text(vi=code, en=code))
    return Text(vi=f"{_name(server)}: {words.vi}", en=f"{_name(server)}: {words.en}")


def _listening(server: DatabaseServer) -> str:
    return f"{_name(server)} ({', '.join(server.listen_addresses)})"


@check("db_secure_config")
def db_secure_config(ctx: EvalContext) -> Outcome:
    servers = _section(ctx).servers
    if not servers:
        return passed("none")
    # Exposure alone is not judged (TLS cannot be told without connecting): evidence only.
    exposed = [_listening(s) for s in servers if s.network_exposed]
    weak = [(s, code) for s in servers for code in s.auth_issues]
    if weak:
        return failed(
            "weak_auth",
            problems=[_problem(s, code) for s, code in weak],
            issues=[f"{s.engine}:{code}" for s, code in weak],
            exposed=exposed,
        )
    unreadable = sorted({f for s in servers for f in s.unreadable_files})
    if unreadable:
        return undetermined(
            "unreadable",
            servers=[_name(s) for s in servers if s.unreadable_files],
            files=unreadable,
        )
    return passed("secure", servers=[_name(s) for s in servers], exposed=exposed)
