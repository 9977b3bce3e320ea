"""How an error becomes an HTTP response: one mapping for the app's exception handlers and the
redemption fast lane (marketplace.api.fastlane)."""
from __future__ import annotations

from eth_abi.exceptions import EncodingError
from fastapi.responses import JSONResponse
from web3.exceptions import Web3TypeError, Web3ValidationError

from ledger_node.errors import ChainUnavailable, GridMartError

from ..services.errors import ServiceError

#: a value the chain's ABI encoding or the database cannot hold. Every parameter declares its
#: range (api/params.py), so these are a last line of defence: the caller's input, never a 500
OUT_OF_RANGE = (OverflowError, EncodingError, Web3ValidationError, Web3TypeError)


def error_response(exc: BaseException) -> JSONResponse | None:
    """`{"detail": message}` with the status the error stands for; None for anything else
    (an unexpected error: a 500 from the server-error middleware)."""
    if isinstance(exc, ServiceError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    if isinstance(exc, ChainUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if isinstance(exc, GridMartError):
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if isinstance(exc, OUT_OF_RANGE):
        return JSONResponse({"detail": f"a value in the request is out of range for the chain or the database "
                                       f"({type(exc).__name__}: {str(exc)[:200]}): see the ranges in /openapi.json"},
                            status_code=400)
    return None
