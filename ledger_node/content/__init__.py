"""Content-addressed artifact storage: IPFS daemon or embedded, identical CIDs.

See docs/content.md. Public API: ``open_store``, ``ContentStore``, ``PutResult``,
``cid_to_bytes`` / ``cid_from_bytes``; encryption lives in ``.encryption``.
"""
from .cid import cid_from_bytes, cid_to_bytes
from .importer import compute_cid
from .ingest import PutResult
from .store import ContentStore, open_store

__all__ = ["open_store", "ContentStore", "PutResult", "cid_to_bytes", "cid_from_bytes", "compute_cid"]
