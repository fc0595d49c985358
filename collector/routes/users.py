"""Users and sign-in: password login for API tokens, user management, who am I."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from collector import audit, crud, users
from collector.db import SessionDep, SettingsDep
from collector.models import User
from collector.ratelimit import login_rate_limit
from collector.roles import ROLE_LABELS, Role
from collector.routes.deps import ADMIN_RESPONSES
from collector.schemas import ErrorDetail
from collector.security import ProvinceAdminDep, UserDep, client_address, forbidden

router = APIRouter(tags=["users"])

UserRole = Annotated[str, Field(description="province_admin | province_reviewer | agency_admin")]


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str | None
    role: str
    agency_id: int | None
    created_at: datetime
    disabled_at: datetime | None
    has_password: bool = False


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: UserRole
    agency_id: int | None = Field(default=None, description="Required for agency_admin.")
    password: str | None = Field(
        default=None,
        min_length=users.MIN_PASSWORD_LENGTH,
        max_length=1024,
        description="Omit for a service account that only uses API tokens.",
    )
    display_name: str | None = Field(default=None, max_length=255)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: UserRole | None = None
    agency_id: int | None = None
    password: str | None = Field(
        default=None, min_length=users.MIN_PASSWORD_LENGTH, max_length=1024
    )
    display_name: str | None = Field(default=None, max_length=255)
    disabled: bool | None = Field(
        default=None, description="Disabling (or a new role or password) revokes all tokens."
    )


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    label: str | None = Field(default=None, max_length=255)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=255)
    expires_in_hours: float | None = Field(
        default=None, gt=0, le=24 * 366, description="Never expires when omitted."
    )


class TokenIssued(BaseModel):
    token: str = Field(description="Bearer token (pu_…); shown only once.")
    token_id: int
    expires_at: datetime | None
    user: UserPublic


class Me(BaseModel):
    actor: str
    role: str
    role_label: dict[str, str]
    agency_id: int | None
    user: UserPublic | None


def _public(user: User) -> UserPublic:
    return UserPublic.model_validate(user).model_copy(
        update={"has_password": user.password_hash is not None}
    )


def _user_or_404(session: SessionDep, user_id: int) -> User:
    user = users.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"user {user_id} not found")
    return user


def _issued(issued: users.IssuedToken, user: User) -> TokenIssued:
    assert issued.row.id is not None
    return TokenIssued(
        token=issued.token,
        token_id=issued.row.id,
        expires_at=issued.row.expires_at,
        user=_public(user),
    )


@router.post(
    "/auth/token",
    response_model=TokenIssued,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(login_rate_limit)],
    responses={
        401: {"model": ErrorDetail, "description": "Wrong username or password"},
        429: {"model": ErrorDetail, "description": "Too many login attempts"},
    },
)
def login(
    body: LoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> TokenIssued:
    """Sign in with a password; returns an API token valid ``POSTURE_API_TOKEN_HOURS``."""
    request_source = client_address(request)
    try:
        user = users.login(session, body.username, body.password)
    except HTTPException:
        audit.record_failed_login(session, body.username, source=request_source)
        session.commit()
        raise
    issued = users.issue_token(
        session, user, label=body.label, lifetime=timedelta(hours=settings.api_token_hours)
    )
    audit.record(
        session,
        users.principal_for(user, source=request_source),
        "auth.login",
        agency_id=user.agency_id,
        target=f"user:{user.id}",
        detail={"token_id": issued.row.id},
    )
    session.commit()
    session.refresh(user)
    session.refresh(issued.row)
    return _issued(issued, user)


@router.get("/users/me", response_model=Me, responses=ADMIN_RESPONSES)
def whoami(principal: UserDep, session: SessionDep) -> Me:
    """The caller's identity and role."""
    user = users.get_user(session, principal.user_id) if principal.user_id else None
    return Me(
        actor=principal.actor,
        role=principal.role.value,
        role_label=ROLE_LABELS[principal.role],
        agency_id=principal.agency_id,
        user=_public(user) if user else None,
    )


@router.get("/users", response_model=list[UserPublic], responses=ADMIN_RESPONSES)
def list_users(session: SessionDep, principal: ProvinceAdminDep) -> list[UserPublic]:
    return [_public(u) for u in users.list_users(session)]


@router.post(
    "/users",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **ADMIN_RESPONSES,
        409: {"model": ErrorDetail, "description": "Username taken"},
        422: {"model": ErrorDetail, "description": "Role and agency do not fit"},
    },
)
def create_user(body: UserCreate, session: SessionDep, principal: ProvinceAdminDep) -> UserPublic:
    """Add a user (province administrators)."""
    try:
        user = users.create_user(session, **body.model_dump())
    except crud.AlreadyExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except (users.InvalidUser, crud.NotFound) as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    audit.record(
        session,
        principal,
        "user.create",
        agency_id=user.agency_id,
        target=f"user:{user.id}",
        detail=body.model_dump(exclude={"password"}) | {"password_set": body.password is not None},
    )
    session.commit()
    session.refresh(user)
    return _public(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses={**ADMIN_RESPONSES, 422: {"model": ErrorDetail, "description": "Invalid change"}},
)
def update_user(
    user_id: Annotated[int, Path(description="User id")],
    body: UserUpdate,
    session: SessionDep,
    principal: ProvinceAdminDep,
) -> UserPublic:
    """Change a user's role, agency, password or name, or disable it (province administrators)."""
    user = _user_or_404(session, user_id)
    try:
        changed = users.update_user(session, user, **body.model_dump(exclude_unset=True))
    except (users.InvalidUser, crud.NotFound, ValueError) as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    if changed:
        audit.record(
            session,
            principal,
            "user.update",
            agency_id=user.agency_id,
            target=f"user:{user.id}",
            detail={"changed": changed} | body.model_dump(exclude_unset=True, exclude={"password"}),
        )
    session.commit()
    session.refresh(user)
    return _public(user)


@router.post(
    "/users/{user_id}/tokens",
    response_model=TokenIssued,
    status_code=status.HTTP_201_CREATED,
    responses={**ADMIN_RESPONSES, 422: {"model": ErrorDetail, "description": "User disabled"}},
)
def issue_api_token(
    user_id: Annotated[int, Path(description="User id")],
    session: SessionDep,
    principal: UserDep,
    body: TokenRequest | None = None,
) -> TokenIssued:
    """An API token for scripts: for oneself, or for anyone by a province administrator."""
    if principal.user_id != user_id and principal.role != Role.PROVINCE_ADMIN:
        raise forbidden("you may only issue tokens for yourself")
    user = _user_or_404(session, user_id)
    body = body or TokenRequest()
    lifetime = timedelta(hours=body.expires_in_hours) if body.expires_in_hours else None
    try:
        issued = users.issue_token(session, user, label=body.label, lifetime=lifetime)
    except users.InvalidUser as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    audit.record(
        session,
        principal,
        "user.token_issue",
        agency_id=user.agency_id,
        target=f"user:{user.id}",
        detail={"token_id": issued.row.id, "label": body.label},
    )
    session.commit()
    session.refresh(user)
    session.refresh(issued.row)
    return _issued(issued, user)
