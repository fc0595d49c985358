"""The collector's CA certificate, public: agents fetch it once and check it against their pin."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from starlette.concurrency import run_in_threadpool

from collector import tls
from collector.db import SettingsDep
from collector.schemas import ErrorDetail

router = APIRouter(prefix="/tls", tags=["tls"])

PEM_MEDIA_TYPE = "application/x-pem-file"


@router.get(
    "/ca.pem",
    response_class=Response,
    responses={
        200: {
            "description": "The CA certificate (PEM) agents pin at enrollment",
            "content": {PEM_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        404: {"model": ErrorDetail, "description": "The collector has no CA configured"},
    },
)
async def ca_certificate(settings: SettingsDep) -> Response:
    """The CA that signs the collector's TLS certificate (no authentication).

    It is public by nature; an agent never trusts it as downloaded, only after
    its SHA-256 fingerprint matched the one given with the enrollment token.
    """
    path = tls.published_ca_path(settings)
    if path is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=(
                "this collector has no CA configured (POSTURE_TLS_DIR or POSTURE_TLS_CA_FILE); "
                "agents verify it with their system trust store or ca_file instead"
            ),
        )
    try:
        certificate = await run_in_threadpool(tls.load_certificate, path)
    except tls.TlsError as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"the configured CA cannot be read: {exc}"
        ) from exc
    pem = tls.certificate_pem(certificate)
    return Response(
        content=pem,
        media_type=PEM_MEDIA_TYPE,
        headers={"X-CA-Fingerprint": tls.fingerprint(certificate)},
    )
