"""The province-wide compliance view (every agency's verdict per article)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from collector import province
from collector.db import SessionDep, SettingsDep
from collector.routes.deps import ADMIN_RESPONSES
from collector.security import RequireProvinceReader

router = APIRouter(
    prefix="/province",
    tags=["province"],
    dependencies=[RequireProvinceReader],
    responses=ADMIN_RESPONSES,
)


@router.get("/compliance", response_model=province.ProvinceCompliance)
async def province_compliance(
    session: SessionDep, settings: SettingsDep
) -> province.ProvinceCompliance:
    """For every agency: Mức độ, verdict and counts per article, hosts and silent hosts,
    and ``as_of``, when those figures were computed (see collector/province.py)."""
    return await run_in_threadpool(province.province_compliance, session, settings=settings)
