"""Users, their passwords and their tokens (API tokens and dashboard sessions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from collector.credentials import unauthorized
from collector.crud import AlreadyExists, CrudError, NotFound
from collector.models import Agency, User, UserToken, utcnow
from collector.roles import USER_ROLES, Principal, Role
from collector.tokens import (
    format_user_token,
    hash_password,
    new_secret,
    parse_user_token,
    secrets_match,
    verify_password,
)

MIN_PASSWORD_LENGTH = 12
TOKEN_KINDS = ("api", "session")
# last_used_at is refreshed at most this often (a write per request would be wasteful).
_TOUCH_INTERVAL = timedelta(minutes=5)


class InvalidUser(CrudError):
    """A user that cannot be created or changed as asked."""


def _check_role(session: Session, role: str, agency_id: int | None) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        parsed = None
    if parsed not in USER_ROLES:
        allowed = ", ".join(r.value for r in USER_ROLES)
        raise InvalidUser(f"unknown role {role!r}; one of: {allowed}")
    assert parsed is not None
    if parsed == Role.AGENCY_ADMIN:
        if agency_id is None:
            raise InvalidUser("an agency_admin needs an agency_id")
        if session.get(Agency, agency_id) is None:
            raise NotFound(f"agency {agency_id} not found")
    elif agency_id is not None:
        raise InvalidUser(f"a {parsed.value} belongs to the province, not to an agency")
    return parsed


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    agency_id: int | None = None,
    password: str | None = None,
    display_name: str | None = None,
) -> User:
    """Add a user (not committed). Without a password the user can only use API tokens."""
    role_value = _check_role(session, role, agency_id)
    if get_user_by_name(session, username) is not None:
        raise AlreadyExists(f"user {username!r} already exists")
    if password is not None:
        _check_password(password)
    user = User(
        username=username,
        role=role_value.value,
        agency_id=agency_id,
        display_name=display_name,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    return user


def update_user(
    session: Session,
    user: User,
    *,
    role: str | None = None,
    agency_id: int | None = None,
    password: str | None = None,
    display_name: str | None = None,
    disabled: bool | None = None,
) -> list[str]:
    """Change a user (not committed); returns the names of the fields changed.

    Disabling a user or changing its role revokes every token it holds.
    """
    changed: list[str] = []
    if role is not None or agency_id is not None:
        new_role = role if role is not None else user.role
        new_agency = agency_id if agency_id is not None else user.agency_id
        if Role(new_role) != Role.AGENCY_ADMIN and role is not None and agency_id is None:
            new_agency = None
        checked = _check_role(session, new_role, new_agency)
        if checked.value != user.role or new_agency != user.agency_id:
            user.role, user.agency_id = checked.value, new_agency
            changed.append("role")
    if password is not None:
        _check_password(password)
        user.password_hash = hash_password(password)
        changed.append("password")
    if display_name is not None and display_name != user.display_name:
        user.display_name = display_name
        changed.append("display_name")
    if disabled is not None and disabled != (user.disabled_at is not None):
        user.disabled_at = utcnow() if disabled else None
        changed.append("disabled" if disabled else "enabled")
    if {"role", "password", "disabled"} & set(changed):
        revoke_tokens(session, user)
    session.add(user)
    return changed


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_name(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def list_users(session: Session, agency_id: int | None = None) -> Sequence[User]:
    query = select(User).order_by(col(User.id))
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return session.exec(query).all()


# --- tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    row: UserToken
    token: str  # plaintext, shown once


def issue_token(
    session: Session,
    user: User,
    *,
    kind: str = "api",
    label: str | None = None,
    lifetime: timedelta | None = None,
) -> IssuedToken:
    assert user.id is not None and kind in TOKEN_KINDS
    if user.disabled_at is not None:
        raise InvalidUser(f"user {user.username!r} is disabled")
    secret, secret_hash = new_secret()
    now = utcnow()
    row = UserToken(
        user_id=user.id,
        kind=kind,
        token_hash=secret_hash,
        label=label,
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return IssuedToken(row=row, token=format_user_token(row.id, secret))


def login(session: Session, username: str, password: str) -> User:
    """The user whose password this is; one error message whatever went wrong."""
    user = get_user_by_name(session, username)
    if user is None:
        verify_password(password, _DUMMY_HASH)  # same cost whether or not the user exists
        raise unauthorized("wrong username or password")
    if not verify_password(password, user.password_hash) or user.disabled_at is not None:
        raise unauthorized("wrong username or password")
    return user


_DUMMY_HASH = hash_password("not a real password, only spends the same time")


def revoke_tokens(session: Session, user: User, *, kind: str | None = None) -> int:
    now = utcnow()
    query = select(UserToken).where(
        UserToken.user_id == user.id, col(UserToken.revoked_at).is_(None)
    )
    if kind is not None:
        query = query.where(UserToken.kind == kind)
    rows = session.exec(query).all()
    for row in rows:
        row.revoked_at = now
        session.add(row)
    return len(rows)


def token_row(session: Session, token: str) -> tuple[UserToken, User] | None:
    """The valid (unrevoked, unexpired) token row and its enabled user, else None."""
    parsed = parse_user_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = session.get(UserToken, token_id)
    if row is None or not secrets_match(secret, row.token_hash):
        return None
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return row, user


def principal_for(user: User, *, source: str | None = None) -> Principal:
    return Principal(
        role=Role(user.role),
        actor=f"user:{user.username}",
        user_id=user.id,
        agency_id=user.agency_id,
        source=source,
    )


def authenticate_token(
    session: Session, token: str, *, source: str | None = None, kind: str | None = None
) -> Principal:
    found = token_row(session, token)
    if found is None or (kind is not None and found[0].kind != kind):
        raise unauthorized("unknown, expired or revoked token")
    row, user = found
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_INTERVAL:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return principal_for(user, source=source)
