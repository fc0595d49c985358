"""Dashboard sessions (an HttpOnly cookie holding a ``kind="session"`` user token) and CSRF.

* The session cookie carries a user token issued by ``collector.users.issue_token``
  with ``kind="session"`` and a lifetime; logout revokes it in the database, so a
  stolen cookie stops working at once.  ``SameSite=Lax``, ``HttpOnly``, and
  ``Secure`` when the request came over https.
* CSRF: double-submit token.  Every page sets (once) a random ``posture_csrf``
  cookie; every form carries the same value in a hidden field; a POST whose
  field and cookie differ is refused (403) before anything else happens.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from fastapi import HTTPException, Request, Response
from sqlmodel import Session

from collector import users
from collector.models import utcnow
from collector.roles import Principal
from collector.tokens import USER_TOKEN_PREFIX

SESSION_COOKIE = "posture_session"
CSRF_COOKIE = "posture_csrf"
LANG_COOKIE = "posture_lang"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/ui"
SESSION_LIFETIME = timedelta(hours=8)


class LoginRequired(Exception):
    """No valid dashboard session: send the browser to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """The user is known but may not see or do this (rendered as a 403 page)."""


class PageNotFound(Exception):
    """The object does not exist (rendered as a 404 page)."""


class CsrfRefused(Exception):
    """A POST without the right anti-forgery token (rendered as a 403 page)."""


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def session_principal(request: Request, session: Session) -> Principal | None:
    """The dashboard user of this request, or None (no, expired or revoked session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not token.startswith(USER_TOKEN_PREFIX):
        return None
    source = request.client.host if request.client else None
    try:
        return users.authenticate_token(session, token, source=source, kind="session")
    except HTTPException:
        return None


def require_principal(request: Request, session: Session) -> Principal:
    principal = session_principal(request, session)
    if principal is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise LoginRequired(target)
    return principal


def start_session(session: Session, user_id: int) -> str:
    """Issue a session token for the user (commits); returns the cookie value."""
    user = users.get_user(session, user_id)
    assert user is not None
    issued = users.issue_token(
        session, user, kind="session", label="dashboard", lifetime=SESSION_LIFETIME
    )
    session.commit()
    return issued.token


def end_session(request: Request, session: Session) -> bool:
    """Revoke the token of this request's session cookie, if valid (commits)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False
    found = users.token_row(session, token)
    if found is None or found[0].kind != "session":
        return False
    row, _user = found
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
    return True


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        secure=is_https(request),
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, secure=is_https(request), samesite="lax"
    )


# --- CSRF ---------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The token forms of this page carry (the cookie's, or a new one set by ``remember``)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    cached = getattr(request.state, "new_csrf", None)
    if cached is None:
        cached = request.state.new_csrf = secrets.token_urlsafe(32)
    return str(cached)


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request had to create it."""
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            path=COOKIE_PATH,
            httponly=True,
            secure=is_https(request),
            samesite="strict",
        )


async def check_csrf(request: Request) -> dict[str, str]:
    """The submitted form, once its CSRF field matches the cookie; else ``CsrfRefused``."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    field = values.get(CSRF_FIELD, "")
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        raise CsrfRefused()
    return values
