"""API routers, one module per resource."""

from fastapi import APIRouter

from collector.routes import agencies, enroll, health, hosts, reports

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(enroll.router)
api_router.include_router(reports.router)
api_router.include_router(agencies.router)
api_router.include_router(hosts.router)

__all__ = ["api_router", "health"]
