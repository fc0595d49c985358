"""Property-based API test: schemathesis drives every operation of the OpenAPI schema.

In-process (ASGI), with the admin token on the admin API and a real agent
credential on the agent API.  Checks: no 5xx, and every response body matches
the schema documented for its status code.  Undocumented status codes are not
checked: FastAPI answers 400 to unparsable JSON on every body route, which no
route documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from collector.app import create_app
from collector.settings import Settings
from tests.collector.conftest import ADMIN_TOKEN, Api

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

# Operations the agent authenticates to with its credential; everything else is admin.
AGENT_PATHS = ("/api/v1/reports", "/api/v1/agent/")


class Fixture:
    app: FastAPI
    agent_credential: str


@pytest.fixture(scope="module")
def st_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    db: Path = tmp_path_factory.mktemp("schemathesis") / "collector.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", admin_token=ADMIN_TOKEN,
                              enroll_rate_per_minute=0))
    with TestClient(app) as client:
        api = Api(client, app.state.engine)
        agent = api.new_agent()
        fixture = Fixture()
        fixture.app = app
        fixture.agent_credential = agent.credential
        yield fixture


@pytest.fixture(scope="module")
def api_schema(st_app: Fixture):
    return schemathesis.openapi.from_asgi("/openapi.json", st_app.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, st_app: Fixture) -> None:
    agent_op = case.operation.path.startswith(AGENT_PATHS)
    token = st_app.agent_credential if agent_op else ADMIN_TOKEN
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
