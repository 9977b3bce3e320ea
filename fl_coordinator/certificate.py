"""The task certificate: one canonical JSON document that pins what a federated task trains.

It names the initial model and the public HE context by CID and sha-256 (the pair a
product certificate carries), and the round rules partners agree to. Its sha-256 is
the task id and the spec hash the FederatedRegistry records when the task opens; the
document's CID is emitted with it (TaskOpened.specCid). So anyone holding the chain
record can fetch the document, check it against the hash, and check the initial model
and context it names; partners do exactly that before they train.
"""
from __future__ import annotations

import hashlib
import json

from fl_coordinator.errors import FLError

KIND = "gridmart-fl-task/1"


class CertificateMismatch(FLError):
    """A document or artifact does not match the certified hash."""


def issue(*, artifacts: dict[str, tuple[str, bytes]], **terms) -> bytes:
    """The certificate bytes: `artifacts` maps a name to (CID, bytes); `terms` are the task rules."""
    doc = {"kind": KIND, **terms,
           "artifacts": {name: {"cid": cid, "sha256": hashlib.sha256(data).hexdigest()}
                         for name, (cid, data) in artifacts.items()}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def task_id_of(certificate: bytes) -> str:
    """The task id (= the on-chain spec hash) a certificate stands for."""
    return "0x" + hashlib.sha256(certificate).hexdigest()


def verify(certificate: bytes, task_id: str) -> dict:
    """The certificate's terms, if its sha-256 is `task_id`; else CertificateMismatch."""
    if task_id_of(certificate) != task_id.lower():
        raise CertificateMismatch(f"the task certificate does not hash to the task id {task_id}")
    try:
        doc = json.loads(certificate)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise CertificateMismatch(f"not a {KIND} certificate")
    return doc


def check_artifact(terms: dict, name: str, data: bytes) -> None:
    """Raise CertificateMismatch unless `data` is the certified artifact `name`."""
    want = terms["artifacts"][name]["sha256"]
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise CertificateMismatch(f"the {name} does not match the task certificate: "
                                  f"sha-256 {got}, certified {want}")


def check_terms(terms: dict, expected: dict, **more) -> None:
    """Raise CertificateMismatch naming every term that differs from `expected` (and `more`)."""
    asked = json.loads(json.dumps({**expected, **more}))  # compare as the certificate holds them (JSON)
    wrong = sorted(k for k, v in asked.items() if terms.get(k) != v)
    if wrong:
        raise CertificateMismatch(f"the task certificate does not pin what was asked: {', '.join(wrong)} differ")
