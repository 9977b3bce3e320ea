"""Audit a compute job's record: anchored on chain, and naming what the chain certifies.

The input is the proof bundle the marketplace hands out (GET /jobs/{id}/proof), the same
shape as a usage record's; optionally the job's output bytes and the data product's
certified metadata (to check the algorithm was one its publisher trusts).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ..content.cid import cid_from_bytes
from ..content.importer import compute_cid
from .ledger import Ledger
from .product import registration
from .result import Report
from .usage import audit_usage


def audit_job(ledger: Ledger, bundle: dict[str, Any], output: bytes | None = None,
              metadata: bytes | None = None) -> Report:
    inclusion = audit_usage(ledger, bundle)
    record = inclusion.facts["record"]
    r = Report(f"compute job {record.get('job')}")
    r.checks += inclusion.checks
    r.check("the record is a compute job's", record.get("kind") == "job", f"kind {record.get('kind')!r}")
    product = _certificate(ledger, r, "the product", record.get("certificate"), record.get("product"))
    if record.get("dataset"):  # compute-to-data: the product is the data; the algorithm came from the subscriber
        if product is not None:
            r.check("the dataset is the product's certified data", product["cid"] == record["dataset"],
                    f"dataset {record['dataset']}, certificate {record.get('certificate')} names {product['cid']}")
        if record.get("algorithm_product"):
            _algorithm_product(ledger, r, record)
        _trusted(r, record, product, metadata)
    elif product is not None:
        r.check("the algorithm is the product's certified bundle", product["cid"] == record.get("algorithm"),
                f"algorithm {record.get('algorithm')}, certificate names {product['cid']}")
    if record.get("state") == "done":
        r.check("a finished job names its environment and output",
                bool(record.get("env")) and bool(record.get("output")) and bool(record.get("output_sha256")),
                f"env {record.get('env')}, output {record.get('output')}")
    if output is not None:
        cid, sha = compute_cid(output), hashlib.sha256(output).hexdigest()
        r.check("the output file is the recorded output", (cid, sha) == (record.get("output"), record.get("output_sha256")),
                f"file: {cid} / sha-256 {sha}")
    r.facts["record"] = record
    return r


def _certificate(ledger: Ledger, r: Report, what: str, cert_id: Any, product_id: Any) -> dict | None:
    try:
        reg = registration(ledger, int(cert_id))
    except (TypeError, ValueError, LookupError) as exc:
        r.check(f"{what} has a certificate on chain", False, str(exc))
        return None
    listing = reg.args["listing"]
    found = {"cid": cid_from_bytes(listing["cid"]), "metadata_hash": listing["metadataHash"],
             "product": reg.args.get("productId", product_id)}
    r.check(f"{what} has a certificate on chain", True, f"certificate {cert_id}", reg.tx, reg.block)
    return found


def _algorithm_product(ledger: Ledger, r: Report, record: dict) -> None:
    """A certified tool chosen as the algorithm: some certificate of that product names its CID."""
    history = ledger.gm.products.history(int(record["algorithm_product"]))
    cids = {cid_from_bytes(reg.args["listing"]["cid"]) for reg in (registration(ledger, c) for c in history)}
    r.check("the algorithm is a certified tool's bundle", record.get("algorithm") in cids,
            f"product {record['algorithm_product']}: {len(history)} certificate(s)")


def _trusted(r: Report, record: dict, product: dict | None, metadata: bytes | None) -> None:
    """With the data product's metadata (it must hash to the certificate's): was the
    algorithm on its publisher's trusted list, or was the request approved one by one?"""
    if metadata is None or product is None:
        return
    digest_ok = hashlib.sha256(metadata).digest() == bytes(product["metadata_hash"])
    r.check("the metadata is the data product's certified metadata", digest_ok, "sha-256 against the certificate")
    if not digest_ok:
        return
    terms = json.loads(metadata).get("compute") or {}
    names = {str(t) for t in terms.get("trusted_algorithms", [])}
    trusted = record.get("algorithm") in names or str(record.get("algorithm_product")) in names
    r.check("the data owner trusts this algorithm, or approves each request", trusted or bool(terms.get("approve_each")),
            "on the trusted list" if trusted else "approved by the data owner (approve_each)")
