"""FastAPI dependencies: the service context, a DB session, the signed-in member."""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Header, Request
from sqlmodel import Session

from ..services.auth import Principal, authenticate, bearer
from ..services.context import Context


async def get_ctx(request: Request) -> Context:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool, a thread hop
    # per request for an attribute read
    return request.app.state.ctx


def get_session(ctx: Context = Depends(get_ctx)) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


def get_principal(ctx: Context = Depends(get_ctx), authorization: str | None = Header(default=None)) -> Principal:
    return authenticate(ctx, bearer(authorization))


def sync_index(request: Request) -> None:
    """Bring the index up to date (after a write, so the caller reads its own write)."""
    request.app.state.indexer.sync()
