"""The dashboard over plain HTTP (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sys

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from collector.models import AuditEvent, UserToken, WaiverRecord
from tests.web.conftest import PASSWORD, World, browser, csrf_of, login


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_login_session_cookie_and_logout(app: FastAPI, world: World) -> None:
    c = browser(app)
    r = c.get("/ui/province", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fprovince"

    page = c.get("/ui/login")
    wrong = c.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "username": "sophia", "password": "sai mật khẩu"},
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in wrong.text
    assert "posture_session" not in c.cookies

    r = c.post(
        "/ui/login",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "sophia",
            "password": PASSWORD,
            "next": "/ui/province",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/province"
    cookie = r.headers["set-cookie"]
    assert "posture_session=pu_" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here
    session_value = c.cookies["posture_session"]
    with Session(app.state.engine) as s:
        rows = s.exec(select(UserToken).where(UserToken.kind == "session")).all()
        assert len(rows) == 1 and rows[0].expires_at is not None
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
        assert "auth.login_failed" in actions and "auth.login" in actions

    overview = c.get("/ui/province")
    assert overview.status_code == 200
    assert "Tổng quan toàn tỉnh" in overview.text

    out = c.post("/ui/logout", data={"csrf_token": csrf_of(overview.text)}, follow_redirects=False)
    assert out.status_code == 303
    with Session(app.state.engine) as s:
        row = s.exec(select(UserToken).where(UserToken.kind == "session")).one()
        assert row.revoked_at is not None
    # the old cookie, replayed, no longer opens anything
    replay = browser(app)
    replay.cookies.set("posture_session", session_value, path="/ui")
    assert replay.get("/ui/province", follow_redirects=False).status_code == 303


def test_session_cookie_is_secure_over_https(app: FastAPI, world: World) -> None:
    c = browser(app, https=True)
    page = c.get("/ui/login")
    r = c.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "username": "rita", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


def test_api_token_is_not_a_dashboard_session(app: FastAPI, world: World) -> None:
    r = browser(app).post("/api/v1/auth/token", json={"username": "sophia", "password": PASSWORD})
    assert r.status_code in (200, 201), r.text
    c = browser(app)
    c.cookies.set("posture_session", r.json()["token"], path="/ui")
    assert c.get("/ui/province", follow_redirects=False).status_code == 303


def test_posts_without_the_csrf_token_are_refused(app: FastAPI, world: World) -> None:
    c = browser(app)
    c.get("/ui/login")
    r = c.post("/ui/login", data={"username": "sophia", "password": PASSWORD})
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert "posture_session" not in c.cookies

    admin = login(app, "sophia")
    forged = admin.post(
        f"/ui/agencies/{world.agency_a}/waivers/{world.waiver_id}/revoke",
        data={"csrf_token": "x" * 43},
    )
    assert forged.status_code == 403
    assert admin.post("/ui/logout", data={}).status_code == 403
    with Session(app.state.engine) as s:
        waiver = s.get(WaiverRecord, world.waiver_id)
        assert waiver is not None and waiver.revoked_at is None
        assert s.exec(select(UserToken).where(UserToken.kind == "session")).one().revoked_at is None
    assert admin.get("/ui/province").status_code == 200  # still logged in


def test_agency_admin_sees_only_their_agency(app: FastAPI, world: World) -> None:
    bob = login(app, "bob")
    home = bob.get("/ui/", follow_redirects=False)
    assert home.headers["location"] == f"/ui/agencies/{world.agency_b}"
    province = bob.get("/ui/province", follow_redirects=False)
    assert province.headers["location"] == f"/ui/agencies/{world.agency_b}"
    own = bob.get(f"/ui/agencies/{world.agency_b}")
    assert own.status_code == 200 and "pc-ubnd-01" in own.text
    for url in (
        f"/ui/agencies/{world.agency_a}",
        f"/ui/hosts/{world.hosts['bad']}",
        f"/ui/agencies/{world.agency_a}/report?period=2026-H1&format=csv",
    ):
        r = bob.get(url)
        assert r.status_code == 403, url
        assert "Không có quyền truy cập" in r.text
        assert "srv-web-01" not in r.text
    search = bob.get("/ui/search?role=workstation")
    assert "pc-ubnd-01" in search.text and "pc-ketoan-01" not in search.text
    revoke = bob.post(
        f"/ui/agencies/{world.agency_a}/waivers/{world.waiver_id}/revoke",
        data={"csrf_token": csrf_of(own.text)},
    )
    assert revoke.status_code == 403


def test_reviewer_reads_everything_but_sees_no_write_action(app: FastAPI, world: World) -> None:
    rita = login(app, "rita")
    page = rita.get(f"/ui/agencies/{world.agency_a}")
    assert page.status_code == 200
    assert "av_installed" in page.text  # the waiver is listed …
    assert "/revoke" not in page.text and "Thu hồi" not in page.text  # … without its button
    r = rita.post(
        f"/ui/agencies/{world.agency_a}/waivers/{world.waiver_id}/revoke",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 403

    anna = login(app, "anna")
    own = anna.get(f"/ui/agencies/{world.agency_a}")
    assert "Thu hồi" in own.text
    done = anna.post(
        f"/ui/agencies/{world.agency_a}/waivers/{world.waiver_id}/revoke",
        data={"csrf_token": csrf_of(own.text)},
    )
    assert done.status_code == 200 and "Đã thu hồi miễn trừ." in done.text
    with Session(app.state.engine) as s:
        waiver = s.get(WaiverRecord, world.waiver_id)
        assert waiver is not None and waiver.revoked_at is not None
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "waiver.revoke")).one()
        assert event.actor == "user:anna"


def test_pages_speak_vietnamese_with_diacritics(app: FastAPI, world: World) -> None:
    c = login(app, "sophia")
    overview = text_of(c.get("/ui/province").text)
    for words in (
        "Sở Tài chính",
        "Ủy ban nhân dân huyện Bàu Bàng",
        "Mức độ",
        "Điều 16",
        "Điều 20",
        "Máy mất liên lạc",
        "Không đạt",
    ):
        assert words in overview, words

    agency = c.get(f"/ui/agencies/{world.agency_a}").text
    body = text_of(agency)
    for words in (
        "Máy và các điểm chưa đạt",
        "Xác nhận của cán bộ",
        "Miễn trừ",
        "Sổ theo dõi sự cố",
        "Phát hiện mã độc trên máy kế toán",
        "Sự cố gây mất an toàn, an ninh thông tin",
        "Xuất báo cáo PDF",
        "Điểm tuân thủ theo thời gian",
    ):
        assert words in body, words
    # worst first: the insecure server before the well-kept workstation
    assert agency.index("srv-web-01") < agency.index("pc-ketoan-01")
    assert "<svg" in agency and 'role="img"' in agency

    host = text_of(c.get(f"/ui/hosts/{world.hosts['bad']}").text)
    for words in (
        "Thông tin máy",
        "Biện pháp khắc phục",
        "Không đạt",
        "Kết quả theo yêu cầu",
        "Debian GNU/Linux 12",
        "Máy chủ",
    ):
        assert words in host, words

    missing = c.get(f"/ui/hosts/{10**6}")
    assert missing.status_code == 404 and "Không tìm thấy" in missing.text


def test_language_switch_is_remembered(app: FastAPI, world: World) -> None:
    c = login(app, "sophia")
    en = c.get("/ui/province?lang=en")
    assert en.status_code == 200
    assert '<html lang="en">' in en.text
    assert "posture_lang=en" in en.headers["set-cookie"]
    later = c.get(f"/ui/agencies/{world.agency_a}")
    assert "Machines and their gaps" in later.text and "Fail" in later.text
    assert "Không đạt" not in later.text
    back = c.get("/ui/province?lang=vi")
    assert '<html lang="vi">' in back.text and "Tổng quan toàn tỉnh" in back.text
    assert "Tổng quan toàn tỉnh" in c.get("/ui/province").text


def _found(html: str) -> set[str]:
    return set(re.findall(r'href="/ui/hosts/\d+">([^<]+)</a>', html))


def test_filters_return_the_right_machines(app: FastAPI, world: World) -> None:
    c = login(app, "sophia")
    assert _found(c.get("/ui/search?role=server").text) == {"srv-web-01"}
    assert _found(c.get("/ui/search?role=workstation").text) == {"pc-ketoan-01", "pc-ubnd-01"}
    assert _found(c.get("/ui/search?verdict=fail&article=18").text) == {"srv-web-01"}
    assert _found(c.get("/ui/search?verdict=fail").text) == {"srv-web-01"}
    assert _found(c.get("/ui/search?software=openssl").text) == {"pc-ubnd-01"}
    assert _found(c.get("/ui/search?software=openssl&version=3.0").text) == {"pc-ubnd-01"}
    assert _found(c.get("/ui/search?software=openssl&version=1.1").text) == set()
    assert _found(c.get("/ui/search?software=clamav").text) == {"pc-ketoan-01", "srv-web-01"}
    assert _found(c.get("/ui/search?os=linux&role=server").text) == {"srv-web-01"}
    none = c.get("/ui/search?software=openssl&version=1.1")
    assert "Không có máy nào phù hợp." in none.text


def test_report_download_uses_the_session_cookie(app: FastAPI, world: World) -> None:
    c = login(app, "anna")
    bad = c.get(f"/ui/agencies/{world.agency_a}/report?period=../x&format=exe")
    assert bad.status_code == 422
    unparsable = c.get(f"/ui/agencies/{world.agency_a}/report?period=2026-H7&format=csv")
    assert unparsable.status_code == 422
    assert "Kỳ báo cáo hoặc định dạng không hợp lệ." in unparsable.text
    r = c.get(f"/ui/agencies/{world.agency_a}/report?period=2026-H1&format=csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "srv-web-01" in r.content.decode("utf-8-sig")
    assert (
        browser(app)
        .get(
            f"/ui/agencies/{world.agency_a}/report?period=2026-H1&format=csv",
            follow_redirects=False,
        )
        .status_code
        == 303
    )


def test_report_module_missing_is_said_plainly(
    app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "collector.reports", None)  # import fails
    c = login(app, "anna")
    r = c.get(f"/ui/agencies/{world.agency_a}/report?period=2026-H1&format=pdf")
    assert r.status_code == 503
    assert "Chưa thể xuất báo cáo" in r.text and "collector.reports" in r.text


ARTICLE_ROW = re.compile(
    r'<tr><th scope="row">[^<]*?(\d+) — [^<]*</th>\s*<td class="cell c-([a-z_]+)">.*?</td>\s*'
    r"((?:<td class=\"num\">\d+</td>)+)</tr>",
    re.S,
)


def _page_articles(html: str) -> dict[int, tuple[str, list[int]]]:
    section = html[html.index('id="h-articles"') : html.index('id="h-reports"')]
    return {
        int(n): (status, [int(x) for x in re.findall(r">(\d+)<", cells)])
        for n, status, cells in ARTICLE_ROW.findall(section)
    }


def _expected_articles(app: FastAPI, agency_id: int) -> dict[int, tuple[str, list[int]]]:
    from collector import compliance
    from collector.models import Agency
    from collector.web.i18n import VERDICT_ORDER

    with Session(app.state.engine) as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None
        return {
            a.article: (a.status, [a.counts.get(v, 0) for v in VERDICT_ORDER])
            for a in compliance.agency_articles(session, agency)
        }


def test_agency_page_verdicts_equal_agency_articles(app: FastAPI, world: World) -> None:
    """Served from the materialized summary or recomputed, the page's verdicts by
    article are ``compliance.agency_articles``; a change (a waiver revoked) shows at once."""
    from collector import province
    from collector.models import Agency, AgencyComplianceSummary, utcnow
    from collector.settings import Settings
    from collector.web import queries

    c = login(app, "sophia")
    for agency_id in (world.agency_a, world.agency_b):
        first = _page_articles(c.get(f"/ui/agencies/{agency_id}").text)
        assert first and first == _expected_articles(app, agency_id)
        # The first read brought the summary up to date; the next one reads it.
        with Session(app.state.engine) as session:
            row = session.get(AgencyComplianceSummary, agency_id)
            agency = session.get(Agency, agency_id)
            assert row is not None and agency is not None
            assert row.changes == 0 and row.ingests == 0
            settings: Settings = app.state.settings
            assert queries._summary_fresh(row, agency, utcnow(), settings)
        assert _page_articles(c.get(f"/ui/agencies/{agency_id}").text) == first

    page = c.get(f"/ui/agencies/{world.agency_a}").text
    r = c.post(
        f"/ui/agencies/{world.agency_a}/waivers/{world.waiver_id}/revoke",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with Session(app.state.engine) as session:
        assert province.pending_rows(session) >= 1
    after = _page_articles(c.get(f"/ui/agencies/{world.agency_a}").text)
    assert after == _expected_articles(app, world.agency_a)


def test_agency_host_pages_equal_the_full_computation(app: FastAPI, world: World) -> None:
    """Counting in SQL and reading only the page's statuses gives the rows (and the
    order) of the computation over every host's statuses."""
    from collector import compliance, waivers
    from collector.models import Agency, utcnow
    from collector.web import queries

    now = utcnow()
    with Session(app.state.engine) as session:
        agency = session.get(Agency, world.agency_a)
        assert agency is not None and agency.id is not None
        settings = app.state.settings
        active = [w for w in waivers.active_waivers(session, agency.id, now) if w.active(now)]
        assert active, "the seeded waiver must be in force"
        limit = queries.silence_limit(agency, settings)
        full = [
            queries._host_row(host, statuses, agency.level, active, now, limit)
            for host, statuses in compliance.host_check_statuses(session, agency.id).values()
        ]
        for sort in queries.SORTS:
            expected = sorted(full, key=queries._sort_key(sort, now))
            rows, total = queries.agency_host_rows(session, agency, settings, now=now, sort=sort)
            assert total == len(full) and rows == expected
            paged = [
                queries.agency_host_rows(
                    session, agency, settings, now=now, sort=sort, page=p, per_page=1
                )[0]
                for p in range(1, total + 1)
            ]
            assert [r[0] for r in paged] == expected


def test_windows_and_linux_machines_side_by_side(
    app: FastAPI, world: World, api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8: a Windows report needs no special case; the dashboard shows it like Linux."""
    from agent.probes.windows import bitlocker, network
    from agent.report import NetworkSection
    from tests.agent.windows.winkit import json_file
    from tests.policies.test_windows_verdicts import windows_report

    # the pretend Windows host's own interfaces, not this machine's
    monkeypatch.setattr(network, "probe", lambda ctx: NetworkSection())
    monkeypatch.setattr(bitlocker, "listening_tcp", lambda ctx, notes: [])
    agent = api.enroll(api.create_token(world.agency_a), "m-win", "PC-KETOAN-02")
    report = windows_report({"firewall_profiles": json_file("firewall_profiles_public_off.json")})
    report = report.model_copy(
        update={
            "host": report.host.model_copy(
                update={"machine_id": "m-win", "hostname": "PC-KETOAN-02"}
            )
        }
    )
    assert api.post_report(agent, report).status_code == 201
    c = login(app, "anna")
    machine = text_of(c.get(f"/ui/hosts/{agent.host_id}").text)
    assert "windows" in machine.lower()
    assert "Tường lửa" in machine or "tường lửa" in machine
    assert "Không đạt" in machine  # the Public profile is off
    found = _found(c.get("/ui/search", params={"os": "windows"}).text)
    assert "PC-KETOAN-02" in found and "pc-ketoan-01" not in found
    agency = text_of(c.get(f"/ui/agencies/{world.agency_a}").text)
    assert "PC-KETOAN-02" in agency and "pc-ketoan-01" in agency
