"""API routers, one module per resource."""

from fastapi import APIRouter

from collector.routes import agencies, attestations, enroll, health, hosts, reports, waivers
from collector.routes import agent_credentials as agent_credential_routes
from collector.routes import agentless as agentless_routes
from collector.routes import audit as audit_routes
from collector.routes import discovery as discovery_routes
from collector.routes import fleet as fleet_routes
from collector.routes import history as history_routes
from collector.routes import incidents as incident_routes
from collector.routes import network as network_routes
from collector.routes import parameters as agency_parameters
from collector.routes import province as province_routes
from collector.routes import report_exports as report_export_routes
from collector.routes import software_register as register_routes
from collector.routes import tls as tls_routes
from collector.routes import users as user_routes

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(enroll.router)
api_router.include_router(reports.router)
api_router.include_router(agencies.router)
api_router.include_router(hosts.router)
api_router.include_router(attestations.router)
api_router.include_router(waivers.router)
api_router.include_router(agency_parameters.router)
api_router.include_router(register_routes.router)
api_router.include_router(fleet_routes.router)
api_router.include_router(history_routes.router)
api_router.include_router(network_routes.admin_router)
api_router.include_router(network_routes.agent_router)
api_router.include_router(discovery_routes.router)
api_router.include_router(agentless_routes.router)
api_router.include_router(province_routes.router)
api_router.include_router(tls_routes.router)
api_router.include_router(agent_credential_routes.router)
api_router.include_router(user_routes.router)
api_router.include_router(audit_routes.router)
api_router.include_router(incident_routes.router)
api_router.include_router(report_export_routes.router)

__all__ = ["api_router", "health"]
