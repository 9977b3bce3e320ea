"""Audit a product certificate from the chain and, when given, the artifact bytes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .. import typed_data
from ..content import ContentStore, cid_from_bytes, cid_to_bytes, compute_cid
from ..content.importer import CHUNK_SIZE, DagBuilder
from ..contracts import Kind, Role, Status
from .ledger import Event, Ledger, NotOnChain
from .membership import member_events, replay, role_names
from .result import Check, Report


@dataclass(frozen=True)
class Digest:
    """What the artifact checks need of the bytes: their sha-256 and their CID (v1, raw leaves)."""
    sha256: bytes
    cid: str

    @classmethod
    def of(cls, data: bytes) -> "Digest":
        return cls(hashlib.sha256(data).digest(), compute_cid(data))


class Hasher:
    """A Digest built chunk by chunk, so an artifact is checked without holding it in memory."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._dag = DagBuilder(lambda cid, block: None)
        self._pending = bytearray()  # less than one UnixFS chunk
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        view, start = memoryview(data), 0
        if self._pending:
            start = min(CHUNK_SIZE - len(self._pending), len(data))
            self._pending += view[:start]
            if len(self._pending) < CHUNK_SIZE:
                return
            self._dag.add_chunk(bytes(self._pending))
            self._pending.clear()
        while len(data) - start >= CHUNK_SIZE:
            self._dag.add_chunk(bytes(view[start:start + CHUNK_SIZE]))
            start += CHUNK_SIZE
        self._pending += view[start:]

    def digest(self) -> Digest:
        if self._pending or self.size == 0:
            self._dag.add_chunk(bytes(self._pending))
            self._pending.clear()
        return Digest(self._sha.digest(), str(self._dag.finish()))


def registration(ledger: Ledger, cert_id: int) -> Event:
    found = ledger.events("products", "CertificateRegistered", id=cert_id)
    if not found:
        raise NotOnChain(f"no certificate {cert_id} on chain: check the id (certificates are numbered from 1)")
    return found[0]


def find_by_artifact(ledger: Ledger, data: bytes) -> list[int]:
    """Certificates whose sha-256 (of the plaintext) or CID matches these bytes."""
    sha, cid = hashlib.sha256(data).digest(), cid_to_bytes(compute_cid(data))
    return [e.args["id"] for e in ledger.events("products", "CertificateRegistered")
            if e.args["listing"]["sha256"] == sha or e.args["listing"]["cid"] == cid]


def signer_authorized(ledger: Ledger, publisher: str, position: tuple[int, int]) -> Check:
    """Was `publisher` an active member with the publisher role just before `position`?"""
    state = replay(member_events(ledger, publisher), before=position)
    ok = state.active_with(Role.PUBLISHER)
    detail = (f"{publisher} was {state.status} with roles {role_names(state.roles)} at block {position[0]}"
              + ("" if ok else ": not an admitted publisher then"))
    admitted = state.admitted
    return Check("signer was an active publisher at that block", ok, detail,
                 admitted.tx if admitted else None, admitted.block if admitted else None)


def audit_product(ledger: Ledger, cert_id: int, data: bytes | None = None, metadata: bytes | None = None,
                  store: ContentStore | None = None, digest: Digest | None = None) -> Report:
    """`data` (the artifact's bytes) or its `digest` (from a Hasher) adds the artifact checks."""
    reg = registration(ledger, cert_id)
    a, listing = reg.args, reg.args["listing"]
    cid = cid_from_bytes(listing["cid"])
    r = Report(f"certificate {cert_id} (product {a['productId']}, version {a['version']})")
    r.check("certificate registered", True, f"by {a['publisher']}, {Kind(listing['kind']).name.lower()}, CID {cid}",
            reg.tx, reg.block)
    _header(ledger, r, reg)
    signer = typed_data.recover("Listing", dict(listing), a["signature"],
                                ledger.w3.eth.chain_id, ledger.gm.products.address)
    r.check("publisher's EIP-712 signature", signer == a["publisher"],
            f"recovered signer {signer}" + ("" if signer == a["publisher"] else f" ≠ publisher {a['publisher']}"), reg.tx)
    r.checks.append(signer_authorized(ledger, a["publisher"], reg.position))
    if data is not None:
        digest = Digest.of(data)
    if digest is not None:
        _artifact(r, listing, digest, store)
    if metadata is not None:
        digest = hashlib.sha256(metadata).digest()
        r.check("metadata hash", digest == listing["metadataHash"],
                f"sha-256 of the metadata {digest.hex()} vs certified {listing['metadataHash'].hex()}", reg.tx)
    _versions(ledger, r, reg)
    return r


def _header(ledger: Ledger, r: Report, reg: Event) -> None:
    """The stored header must agree with the event that created it."""
    c = ledger.gm.products.certificate(reg.args["id"])
    a = reg.args
    same = (c.publisher == a["publisher"] and c.product_id == a["productId"] and c.version == a["version"]
            and c.sha256 == a["listing"]["sha256"] and c.previous == a["listing"]["previous"])
    r.check("stored header matches the registration event", same,
            f"publisher, product, version, previous and sha-256 {'agree' if same else 'DIFFER'}", reg.tx)


def _artifact(r: Report, listing: dict, digest: Digest, store: ContentStore | None) -> None:
    sha = digest.sha256
    r.check("artifact sha-256", sha == listing["sha256"],
            f"sha-256 of the bytes {sha.hex()} vs certified {listing['sha256'].hex()}")
    certified = cid_from_bytes(listing["cid"])
    own = digest.cid
    if own == certified:
        r.check("artifact CID", True, f"the bytes hash to the certified CID {certified}")
    elif sha == listing["sha256"]:
        r.check("artifact CID", True, f"the certified CID {certified} is of the stored (encrypted) form; "
                f"these plaintext bytes hash to {own} and match the certified sha-256")
    else:
        r.check("artifact CID", False, f"the bytes hash to {own}, the certificate names {certified}")
    if store is not None:
        try:
            size = store.verify(certified)
            r.check("stored artifact intact", True, f"{size} bytes in the content store hash to {certified}")
        except Exception as exc:  # noqa: BLE001 - any store failure is a failed check
            r.check("stored artifact intact", False, f"content store: {exc}")


def _versions(ledger: Ledger, r: Report, reg: Event) -> None:
    """The version chain of the product and every certificate's status history, with block times."""
    versions = ledger.events("products", "CertificateRegistered", productId=reg.args["productId"])
    chain_ok = True
    facts = []
    for i, v in enumerate(versions):
        expected_prev = versions[i - 1].args["id"] if i else 0
        chain_ok &= v.args["listing"]["previous"] == expected_prev and v.args["version"] == i + 1
        history = [{"status": Status(e.args["status"]).name.lower(), "by": e.args["by"], **ledger.stamp(e)}
                   for e in ledger.events("products", "StatusChanged", id=v.args["id"])]
        now = ledger.gm.products.certificate(v.args["id"]).status.name.lower()
        last = history[-1]["status"] if history else "pending"
        r.check(f"status of certificate {v.args['id']}", now == last,
                f"now {now}; replayed from {len(history)} status event(s): {last}",
                history[-1]["tx"] if history else v.tx)
        facts.append({"certificate": v.args["id"], "version": v.args["version"], "previous": v.args["listing"]["previous"],
                      "sha256": v.args["listing"]["sha256"].hex(), "cid": cid_from_bytes(v.args["listing"]["cid"]),
                      "metadata_hash": v.args["listing"]["metadataHash"].hex(), **ledger.stamp(v), "status": history})
    latest = ledger.gm.products.latest_version(reg.args["productId"])
    chain_ok &= latest == versions[-1].args["id"]
    r.check("version chain", chain_ok, " → ".join(str(v.args["id"]) for v in versions) + f" (latest {latest})")
    r.facts["versions"] = facts
