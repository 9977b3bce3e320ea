"""Bounded integer (and id) types for path, query and body parameters.

Every integer an endpoint takes is declared with the range the chain (or the database) can
hold, so an out-of-range value is a 422 that says the range instead of an overflow deep in
web3's ABI encoding or the database driver (a 500), and /openapi.json shows the range to
clients and fuzzers. The same type works as a path or query parameter and as a pydantic
model field (`annotated_types` constraints, no FastAPI `Path`/`Field` object), so a router
writes `product_id: ProductId` and a model `product_id: ProductId = 0` ("0: none"; defaults
are not validated).
"""
from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from pydantic import StringConstraints

UINT16_MAX = 2 ** 16 - 1
UINT32_MAX = 2 ** 32 - 1
UINT64_MAX = 2 ** 64 - 1
UINT128_MAX = 2 ** 128 - 1
UINT256_MAX = 2 ** 256 - 1
#: the largest BIGINT (SQLite INTEGER, PostgreSQL bigint): ids and nonces stored in the database
INT64_MAX = 2 ** 63 - 1

#: ProductRegistry ids are uint32 (certificate ids and the product ids they start)
ProductId = Annotated[int, Interval(ge=1, le=UINT32_MAX)]
CertificateId = Annotated[int, Interval(ge=1, le=UINT32_MAX)]
#: a row id the database assigned (e.g. a usage record's redemption id)
RecordId = Annotated[int, Interval(ge=1, le=INT64_MAX)]
#: FederatedRegistry task ids are uint256 (the task certificate's sha-256)
ChainTaskId = Annotated[int, Interval(ge=1, le=UINT256_MAX)]
#: an FL coordinator task id as it appears in /fl URLs: 0x + the certificate's sha-256
FlTaskId = Annotated[str, StringConstraints(pattern=r"^0[xX][0-9a-fA-F]{64}$")]
#: FederatedRegistry rounds are uint16
RoundNo = Annotated[int, Interval(ge=1, le=UINT16_MAX)]

#: Licensing plan price and uses per purchase are uint16 (price 0: plan not offered)
Price = Annotated[int, Interval(ge=0, le=UINT16_MAX)]
Uses = Annotated[int, Interval(ge=0, le=UINT16_MAX)]
#: an amount of points moved in one call (FederatedRegistry.fundTask takes a uint128)
Points = Annotated[int, Interval(ge=1, le=UINT128_MAX)]
#: a signed nonce the database also stores (a BIGINT column)
Nonce = Annotated[int, Interval(ge=0, le=INT64_MAX)]
#: a unix time in seconds (signature deadlines; uint256 on chain, BIGINT in the database)
Timestamp = Annotated[int, Interval(ge=0, le=INT64_MAX)]
