"""Content-store error kinds, so callers and tests can tell the failures apart."""
from __future__ import annotations

from ledger_node.errors import ContentError, IntegrityError


class ContentNotFound(ContentError):
    """The CID (or one of its blocks) is not in the store."""


class StoreUnavailable(ContentError):
    """The configured IPFS daemon cannot be reached."""


class OutOfSpace(ContentError):
    """The disk (or a size limit) ran out while storing; nothing was kept."""


class IncompleteUpload(ContentError):
    """The input ended early or did not match what the caller expected."""


__all__ = [
    "ContentError",
    "IntegrityError",
    "ContentNotFound",
    "StoreUnavailable",
    "OutOfSpace",
    "IncompleteUpload",
]
