"""Read-only audits of the GridMart record: the chain and the artifact bytes are the only inputs.

Each ``audit_*`` returns a :class:`Report` of named checks; :mod:`.render` prints any of them
as text, JSON or one HTML page. Nothing here reads the marketplace database.
"""
from .fl import audit_fl
from .job import audit_job
from .ledger import Event, Ledger, NotOnChain
from .licence import audit_licence, parse_licence_id
from .member import audit_member
from .product import audit_product, find_by_artifact, signer_authorized
from .render import render
from .result import Check, Report
from .usage import audit_usage

__all__ = [
           "Check",
           "Event",
           "Ledger",
           "NotOnChain",
           "Report",
           "audit_fl",
           "audit_job",
           "audit_licence",
           "audit_member",
           "audit_product",
           "audit_usage",
           "find_by_artifact",
           "parse_licence_id",
           "render",
           "signer_authorized",
]
