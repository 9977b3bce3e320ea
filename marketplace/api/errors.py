"""How an error becomes an HTTP response: one mapping for the app's exception handlers and the
redemption fast lane (marketplace.api.fastlane)."""
from __future__ import annotations

from fastapi.responses import JSONResponse

from ledger_node.errors import ChainUnavailable, GridMartError

from ..services.errors import ServiceError


def error_response(exc: BaseException) -> JSONResponse | None:
    """`{"detail": message}` with the status the error stands for; None for anything else
    (an unexpected error: a 500 from the server-error middleware)."""
    if isinstance(exc, ServiceError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    if isinstance(exc, ChainUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if isinstance(exc, GridMartError):
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return None
