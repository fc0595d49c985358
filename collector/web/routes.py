"""The dashboard's pages, mounted under ``/ui`` (server-rendered, Jinja2)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlmodel import Session

from collector import (
    attestations,
    audit,
    compliance,
    crud,
    incidents,
    network,
    province,
    ratelimit,
    users,
    waivers,
)
from collector.db import SessionDep, SettingsDep
from collector.models import Agency, WaiverRecord, utcnow
from collector.roles import ROLE_LABELS, Principal, Role
from collector.web import auth, charts, export, queries
from collector.web.i18n import DEFAULT_LANG, LANGS, VERDICT_ORDER, Translator
from policies.framework import load_framework
from policies.model import VERDICTS

HERE = Path(__file__).parent
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(prefix="/ui", include_in_schema=False)


# --- rendering ----------------------------------------------------------------------


def lang_of(request: Request) -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGS:
        return str(wanted)
    cookie = request.cookies.get(auth.LANG_COOKIE)
    return cookie if cookie in LANGS else DEFAULT_LANG


def _when(value: datetime | None, lang: str) -> str:
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    return value.strftime("%d/%m/%Y %H:%M UTC" if lang == "vi" else "%Y-%m-%d %H:%M UTC")


def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + ("?" + query if query else "")


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    t = Translator(lang)
    other = "en" if lang == "vi" else "vi"
    html = _env.get_template(template).render(
        t=t,
        lang=lang,
        principal=principal,
        role_label=ROLE_LABELS[principal.role][lang] if principal is not None else "",
        csrf=auth.csrf_token(request),
        csrf_field=auth.CSRF_FIELD,
        switch_url=url_with(request, lang=other),
        when=lambda v: _when(v, lang),
        url_with=lambda **kw: url_with(request, **kw),
        verdicts=VERDICT_ORDER,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(
            auth.LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            path=auth.COOKIE_PATH,
            samesite="lax",
            secure=auth.is_https(request),
        )
    auth.remember_csrf(request, response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def install(app: FastAPI) -> None:
    """Mount the dashboard on the app (router and its error pages)."""
    app.include_router(router)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        return RedirectResponse("/ui/login?" + urlencode({"next": exc.next_url}), status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        principal = _quiet_principal(request)
        key = "csrf" if isinstance(exc, auth.CsrfRefused) else "forbidden"
        return render(request, "error.html", principal=principal, status_code=403, kind=key)

    async def not_found(request: Request, exc: Exception) -> Response:
        principal = _quiet_principal(request)
        return render(request, "error.html", principal=principal, status_code=404, kind="not_found")

    app.add_exception_handler(auth.LoginRequired, login_required)
    app.add_exception_handler(auth.PageForbidden, forbidden)
    app.add_exception_handler(auth.CsrfRefused, forbidden)
    app.add_exception_handler(auth.PageNotFound, not_found)


def _quiet_principal(request: Request) -> Principal | None:
    engine = request.app.state.engine
    with Session(engine) as session:
        return auth.session_principal(request, session)


def _agency_or_404(session: Session, agency_id: int) -> Agency:
    agency = crud.get_agency(session, agency_id)
    if agency is None:
        raise auth.PageNotFound()
    return agency


def _can_read(principal: Principal, agency_id: int) -> None:
    if not principal.can_read_agency(agency_id):
        raise auth.PageForbidden()


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/ui") and not value.startswith("//"):
        return value
    return "/ui/"


# --- static -------------------------------------------------------------------------


@router.get("/static/style.css")
def stylesheet() -> Response:
    css = (HERE / "static" / "style.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# --- login / logout -----------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, session: SessionDep) -> Response:
    if auth.session_principal(request, session) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request,
        "login.html",
        next_url=_safe_next(request.query_params.get("next")),
        message="logged_out" if request.query_params.get("bye") else None,
        error=None,
    )


@router.post("/login")
async def login_submit(request: Request, session: SessionDep) -> Response:
    form = await auth.check_csrf(request)
    next_url = _safe_next(form.get("next"))
    try:
        ratelimit.login_rate_limit(request)
    except HTTPException:
        return render(request, "login.html", status_code=429, next_url=next_url, error="login_rate")
    username = form.get("username", "")[:64]
    source = request.client.host if request.client else None
    try:
        user = users.login(session, username, form.get("password", ""))
    except HTTPException:
        audit.record_failed_login(session, username, source=source)
        session.commit()
        return render(
            request, "login.html", status_code=401, next_url=next_url, error="login_failed"
        )
    assert user.id is not None
    token = auth.start_session(session, user.id)
    audit.record(
        session,
        users.principal_for(user, source=source),
        "auth.login",
        agency_id=user.agency_id,
        target=f"user:{user.id}",
        detail={"kind": "session"},
    )
    session.commit()
    response = RedirectResponse(next_url, status_code=303)
    auth.set_session_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await auth.check_csrf(request)
    auth.end_session(request, session)
    response = RedirectResponse("/ui/login?bye=1", status_code=303)
    auth.clear_session_cookie(request, response)
    return response


# --- pages --------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    principal = auth.require_principal(request, session)
    suffix = ""
    if request.query_params.get("lang") in LANGS:
        suffix = "?lang=" + request.query_params["lang"]
    if principal.is_province:
        return RedirectResponse("/ui/province" + suffix, status_code=303)
    return RedirectResponse(f"/ui/agencies/{principal.agency_id}{suffix}", status_code=303)


@router.get("/province")
def province_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    principal = auth.require_principal(request, session)
    if not principal.is_province:
        if principal.role == Role.AGENCY_ADMIN and principal.agency_id is not None:
            return RedirectResponse(f"/ui/agencies/{principal.agency_id}", status_code=303)
        raise auth.PageForbidden()
    view = province.province_compliance(session, settings=settings)
    trend = queries.trends(session)
    fw = load_framework()
    rows = []
    for entry in view.agencies:
        by_article = {a.article: a for a in entry.articles}
        rows.append(
            {
                "agency": entry,
                "cells": [(n, by_article.get(n)) for n in queries.article_numbers()],
                "trend": trend.get(entry.id, queries.Trend()),
            }
        )
    return render(
        request,
        "province.html",
        principal=principal,
        rows=rows,
        articles=[(n, fw.articles[n]) for n in queries.article_numbers()],
        generated_at=view.generated_at,
    )


@router.get("/agencies/{agency_id}")
def agency_page(
    agency_id: int, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    principal = auth.require_principal(request, session)
    agency = _agency_or_404(session, agency_id)
    _can_read(principal, agency_id)
    lang = lang_of(request)
    now = utcnow()
    sort = request.query_params.get("sort", "worst")
    sort = sort if sort in queries.SORTS else "worst"
    page = _int(request.query_params.get("page"), 1)
    # First: recomputing an out-of-date summary commits, which expires loaded rows.
    articles = queries.agency_article_rows(session, agency, settings, now=now)
    host_rows, total = queries.agency_host_rows(
        session, agency, settings, now=now, sort=sort, page=page
    )
    pages = max(1, math.ceil(total / queries.PAGE_SIZE))
    zones = network.zone_rows(session, agency_id)
    facts = network.network_facts(session, agency, now) if zones else None
    probes = []
    if facts is not None:
        for obs in facts.observations:
            probes.append(
                {
                    "obs": obs,
                    "allowed": facts.allows(obs.src_zone, obs.dst_zone, obs.port),
                }
            )
    series = queries.score_series(session, agency_id)
    t = Translator(lang)
    chart = charts.score_chart(series, title=t("history_title") + f" — {agency.name}", lang=lang)
    waiver_rows = waivers.list_waivers(session, agency_id)
    hostnames = queries.hostnames(
        session, [w.host_id for w in waiver_rows if w.host_id is not None]
    )
    return render(
        request,
        "agency.html",
        principal=principal,
        agency=agency,
        articles=articles,
        summary_trend=queries.trends(session, [agency_id]).get(agency_id, queries.Trend()),
        host_rows=host_rows,
        total=total,
        page=min(max(page, 1), pages),
        pages=pages,
        sort=sort,
        sorts=queries.SORTS,
        article_numbers=queries.article_numbers(),
        check_title=queries.check_title,
        zones=zones,
        probes=probes,
        attestation_rows=[
            (a, _attestation_state(a, now))
            for a in attestations.list_attestations(session, agency_id)
        ],
        waiver_rows=[(w, waivers.waiver_state(w, now)) for w in waiver_rows],
        hostnames=hostnames,
        incident_rows=incidents.list_incidents(session, agency_id, limit=50),
        incident_label=lambda table, key: incidents.label(getattr(incidents, table), key, lang),
        chart=Markup(chart),
        series=series,
        can_manage=principal.can_manage_agency(agency_id),
        periods=export.default_periods(now),
        done=request.query_params.get("done"),
    )


def _attestation_state(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= now else "active"


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value is not None else default
    except ValueError:
        return default


@router.post("/agencies/{agency_id}/waivers/{waiver_id}/revoke")
async def revoke_waiver(
    agency_id: int, waiver_id: int, request: Request, session: SessionDep
) -> Response:
    await auth.check_csrf(request)
    principal = auth.require_principal(request, session)
    _agency_or_404(session, agency_id)
    if not principal.can_manage_agency(agency_id):
        raise auth.PageForbidden()
    row = session.get(WaiverRecord, waiver_id)
    if row is None or row.agency_id != agency_id:
        raise auth.PageNotFound()
    if row.revoked_at is None:
        audit.record(
            session, principal, "waiver.revoke", agency_id=agency_id, target=f"waiver:{row.id}"
        )
    waivers.revoke_waiver(session, waiver_id)
    session.commit()
    return RedirectResponse(f"/ui/agencies/{agency_id}?done=revoked", status_code=303)


@router.get("/agencies/{agency_id}/report")
def agency_report(
    agency_id: int, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    principal = auth.require_principal(request, session)
    agency = _agency_or_404(session, agency_id)
    _can_read(principal, agency_id)
    period = request.query_params.get("period", "")
    fmt = request.query_params.get("format", "pdf")
    if fmt not in export.FORMATS or not export.PERIOD.match(period):
        return render(
            request,
            "message.html",
            principal=principal,
            status_code=422,
            heading="reports_missing_title",
            body="report_bad_request",
            agency=agency,
        )
    try:
        download = export.render(
            session, agency, period=period, fmt=fmt, lang=lang_of(request), settings=settings
        )
    except (export.ReportsUnavailable, NotImplementedError):
        return render(
            request,
            "message.html",
            principal=principal,
            status_code=503,
            heading="reports_missing_title",
            body="reports_missing",
            agency=agency,
        )
    except (ValueError, LookupError):
        return render(
            request,
            "message.html",
            principal=principal,
            status_code=422,
            heading="reports_missing_title",
            body="report_bad_request",
            agency=agency,
        )
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in download.filename)
    return Response(
        download.content,
        media_type=download.media_type,
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"'},
    )


@router.get("/hosts/{host_id}")
def host_page(host_id: int, request: Request, session: SessionDep) -> Response:
    principal = auth.require_principal(request, session)
    host = crud.get_host(session, host_id)
    if host is None:
        raise auth.PageNotFound()
    _can_read(principal, host.agency_id)
    agency = _agency_or_404(session, host.agency_id)
    evaluation = compliance.host_evaluation(session, host, agency)
    report = crud.latest_report(session, host)
    body = report.body if report is not None else {}
    order = {s: i for i, s in enumerate(VERDICT_ORDER)}
    findings = sorted(
        evaluation.findings,
        key=lambda f: (
            order.get(f.status, 9),
            queries.SEVERITY_RANK.get(f.severity, 9),
            f.check_id,
        ),
    )
    return render(
        request,
        "host.html",
        principal=principal,
        host=host,
        agency=agency,
        report=report,
        os=body.get("os") or {},
        hardware=body.get("hardware") or {},
        findings=findings,
        requirements=sorted(
            evaluation.requirements, key=lambda r: (order.get(r.status, 9), r.requirement_id)
        ),
        changes=crud.software_changes(session, host_id, limit=200),
        memory=_memory((body.get("hardware") or {}).get("memory_bytes")),
    )


def _memory(value: Any) -> str:
    if not isinstance(value, int) or value <= 0:
        return "—"
    return f"{value / 1024**3:.1f} GiB"


@router.get("/search")
def search_page(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    principal = auth.require_principal(request, session)
    q = request.query_params
    article = q.get("article")
    verdict = q.get("verdict") or None
    filters = queries.Filters(
        verdict=verdict if verdict in VERDICTS else None,
        article=int(article) if article and article.isdigit() else None,
        role=q.get("role") or None,
        os=q.get("os") or None,
        software=(q.get("software") or "").strip() or None,
        version=(q.get("version") or "").strip() or None,
    )
    page = _int(q.get("page"), 1)
    rows: list[queries.HostRow] = []
    total = 0
    if filters.any:
        rows, total = queries.search_hosts(
            session, principal, filters, settings, now=utcnow(), page=page
        )
    fw = load_framework()
    return render(
        request,
        "search.html",
        principal=principal,
        filters=filters,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / queries.PAGE_SIZE)),
        articles=[(n, fw.articles[n]) for n in queries.article_numbers()],
        article_numbers=queries.article_numbers(),
        os_families=queries.os_families(session),
        check_title=queries.check_title,
        roles=("server", "workstation", "unknown"),
    )
