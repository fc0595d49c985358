"""Authentication of every request, and the role checks routes depend on.

One bearer scheme serves everyone; the token's shape says who it is:

* ``pa_…`` — an agent credential (collector.credentials);
* ``pu_…`` — a user's API token or dashboard session (collector.users);
* anything else is compared with the bootstrap admin token
  (``POSTURE_ADMIN_TOKEN``), which acts as a province administrator.

Routes then ask for a role (``ProvinceAdminDep``, ``ProvinceReaderDep``,
``UserDep``, ``AgentDep``) or for an object the caller may read or manage
(``collector.routes.deps``).  Refusals: 401 when the caller is unknown,
403 when it is known but not allowed.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from collector import users
from collector.credentials import AgentContext, authenticate_agent, unauthorized
from collector.db import SessionDep, SettingsDep
from collector.roles import Principal, Role
from collector.tokens import AGENT_CREDENTIAL_PREFIX, USER_TOKEN_PREFIX, parse_agent_credential

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description=(
        "A user API token (pu_…, from POST /api/v1/auth/token), the bootstrap admin "
        "token (POSTURE_ADMIN_TOKEN), or, on agent endpoints, the agent credential "
        "(pa_…, from POST /api/v1/enroll)."
    ),
)

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def current_principal(
    request: Request, session: SessionDep, settings: SettingsDep, credentials: BearerDep
) -> Principal:
    """Whoever sent the request; 401 when there is no valid token."""
    if credentials is None:
        raise unauthorized("missing token: send 'Authorization: Bearer <token>'")
    token = credentials.credentials
    source = client_address(request)
    if token.startswith(AGENT_CREDENTIAL_PREFIX):
        agent = authenticate_agent(session, token)
        # End the read transaction now: its pooled connection is not held while the
        # request waits for its report's batch (collector/ingest_queue.py).
        session.commit()
        return Principal(
            role=Role.AGENT,
            actor=f"agent:{agent.host_id}",
            agency_id=agent.agency_id,
            agent=agent,
            source=source,
        )
    if token.startswith(USER_TOKEN_PREFIX):
        return users.authenticate_token(session, token, source=source)
    expected = settings.admin_token_value
    if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
        return Principal(role=Role.PROVINCE_ADMIN, actor="admin-token", source=source)
    raise unauthorized("invalid token")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_user(principal: PrincipalDep) -> Principal:
    """A person (any user role), not an agent."""
    if principal.role == Role.AGENT:
        raise forbidden("agent credentials may only post reports and probe results")
    return principal


def require_province_reader(principal: PrincipalDep) -> Principal:
    if not principal.is_province:
        raise forbidden("this view is for the province (Sở TT&TT) roles only")
    return principal


def require_province_admin(principal: PrincipalDep) -> Principal:
    if principal.role != Role.PROVINCE_ADMIN:
        raise forbidden("only a province administrator may do this")
    return principal


def require_agent(principal: PrincipalDep) -> AgentContext:
    if principal.agent is None:
        raise forbidden("this endpoint is for enrolled agents (credential pa_…)")
    return principal.agent


def agent_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The report API's credential, checked only for its shape: the batch that stores
    the report authenticates it (collector/ingest_queue.py), so a request takes no
    database connection of its own.  Any other token is refused as on every agent
    endpoint (401, or 403 for a user), which does read the database."""
    token = credentials.credentials if credentials is not None else ""
    if parse_agent_credential(token) is not None:
        return token
    if token.startswith(AGENT_CREDENTIAL_PREFIX):
        raise unauthorized("unknown agent credential")
    engine = request.app.state.engine
    with Session(engine) as session:
        require_agent(current_principal(request, session, request.app.state.settings, credentials))
    raise unauthorized("unknown agent credential")  # pragma: no cover - refused above


UserDep = Annotated[Principal, Depends(require_user)]
ProvinceReaderDep = Annotated[Principal, Depends(require_province_reader)]
ProvinceAdminDep = Annotated[Principal, Depends(require_province_admin)]
AgentDep = Annotated[AgentContext, Depends(require_agent)]

# Router-level guards (``dependencies=[...]``).
RequireUser = Depends(require_user)
RequireProvinceReader = Depends(require_province_reader)
RequireProvinceAdmin = Depends(require_province_admin)
# Kept for routers written before roles: the province administrator.
AdminDep = RequireProvinceAdmin


def authorize_read(principal: Principal, agency_id: int) -> None:
    if not principal.can_read_agency(agency_id):
        raise forbidden(f"you may not read agency {agency_id}")


def authorize_manage(principal: Principal, agency_id: int) -> None:
    if principal.can_manage_agency(agency_id):
        return
    if principal.can_read_agency(agency_id):
        raise forbidden(f"read-only access to agency {agency_id}")
    raise forbidden(f"you may not manage agency {agency_id}")
