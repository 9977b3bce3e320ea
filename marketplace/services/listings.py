"""Publishing: upload an artifact, then certify it on chain with the publisher's signature.

Order of writes, so nothing is half-done: (1) the artifact lands in the content store
and an Upload row records it; (2) the listing's metadata is written as a
PendingListing keyed by (publisher, nonce); (3) the certificate goes on chain; (4) the
indexer turns the chain event plus the pending metadata into catalogue rows. A crash
after (3) is repaired by the indexer on restart; before (3), nothing is on chain and a
retry with the same signature succeeds.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, select
from web3 import Web3

from ledger_node import typed_data
from ledger_node.content.cid import cid_to_bytes
from ledger_node.content.encryption import put_encrypted, wrap_key
from ledger_node.contracts import Kind, Listing, Role
from ledger_node.errors import ContentError, ContractRevert

from ..models import PendingListing, Product, Upload
from .auth import Principal, require_operator, require_role
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge

SHARING_MODES = ("download", "interface", "remote-run", "federated", "compute-only")
#: a bundle CID or a tool/application certificate id a compute-only data product lets run on it
TrustedAlgorithm = str | int


class OutputPolicy(BaseModel):
    """What may leave a compute-only data product's node (docs/compute.md)."""

    model_config = ConfigDict(extra="forbid")
    max_output_bytes: int = Field(default=1 << 20, ge=1, le=1 << 30)
    #: tables: every row must count at least this many customers in `group_column`
    min_group: int | None = Field(default=None, ge=1, le=1_000_000)
    group_column: str = Field(default="customers", min_length=1, max_length=100)


class ComputeTerms(BaseModel):
    """Where a product's jobs run and, for compute-only data, what may run on it."""

    model_config = ConfigDict(extra="forbid")
    node: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    trusted_algorithms: list[TrustedAlgorithm] = Field(default_factory=list, max_length=200)
    approve_each: bool = False
    output_policy: OutputPolicy = Field(default_factory=OutputPolicy)


class ListingMetadata(BaseModel):
    """Off-chain description of a product; its canonical JSON's sha-256 goes on chain."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    kind: str
    tags: list[str] = Field(default_factory=list, max_length=20)
    sharing_mode: str = "download"
    licence_terms: str = Field(default="", max_length=10_000)
    #: remote-run products: the analytics product that runs the bundle
    runner: str | None = None
    #: where this version came from, e.g. the federated-learning task that trained it
    lineage: dict[str, str | int] | None = Field(default=None, max_length=20)
    #: bundles (remote-run without a runner) and compute-only data: the compute terms
    compute: ComputeTerms | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in ("data", "tool", "application"):
            raise ValueError("kind must be data, tool or application")
        return v

    @field_validator("sharing_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in SHARING_MODES:
            raise ValueError(f"sharing_mode must be one of {', '.join(SHARING_MODES)}")
        return v

    @model_validator(mode="after")
    def _compute_only(self) -> "ListingMetadata":
        if self.sharing_mode == "compute-only" and self.kind != "data":
            raise ValueError("sharing_mode compute-only is for data products (kind data)")
        if self.sharing_mode == "compute-only" and self.runner:
            raise ValueError("a compute-only data product names no runner: subscribers bring the algorithm")
        return self

    def document(self) -> dict:
        """The metadata as hashed and stored; `lineage` and `compute` only when present, so
        hashes of listings made before they existed stay valid."""
        doc = self.model_dump()
        for optional in ("lineage", "compute"):
            if doc[optional] is None:
                del doc[optional]
        return doc

    def canonical(self) -> bytes:
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()


class _Limited:
    """A reader that refuses to go past the configured upload size."""

    def __init__(self, src: BinaryIO, limit: int):
        self.src, self.limit, self.read_bytes = src, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise TooLarge(f"upload exceeds the limit of {self.limit // (1024 * 1024)} MiB (GRIDMART_MAX_UPLOAD_MB)")
        return data


def upload(ctx: Context, session: Session, principal: Principal, stream: BinaryIO, encrypt: bool) -> Upload:
    """Stream an artifact into the content store (optionally encrypted); returns its Upload row."""
    require_role(ctx, principal, Role.PUBLISHER)
    limited = _Limited(stream, ctx.settings.max_upload_mb * 1024 * 1024)
    try:
        if encrypt:
            put = put_encrypted(ctx.store, limited)
            # the content key is kept only wrapped to the operator's wallet key
            envelope = wrap_key(put.content_key, ctx.operator._key_obj.public_key.to_bytes()).hex()
            row = Upload(cid=put.stored.cid, sha256=put.plaintext_sha256, size=put.plaintext_size, encrypted=True,
                         key_envelope=envelope, uploader=principal.address)
        else:
            put = ctx.store.put_stream(limited)
            row = Upload(cid=put.cid, sha256=put.sha256, size=put.size, uploader=principal.address)
    except ContentError as exc:
        raise BadRequest(f"could not store the artifact: {exc}") from None
    existing = session.get(Upload, row.cid)
    if existing is None:
        session.add(row)
        session.commit()
        return row
    return existing


def register_held(ctx: Context, session: Session, principal: Principal, node_name: str, cid: str) -> Upload:
    """Register compute-only data that stays on the publisher's compute node: the node must
    hold it and name this publisher; only its CID, sha-256 and size come here, never its bytes."""
    from .compute_nodes import node

    require_role(ctx, principal, Role.PUBLISHER)
    cid_to_bytes(cid)  # a malformed CID is a 400 naming it
    held = node(ctx, node_name).dataset(cid)
    if held.get("publisher") != principal.address:
        raise Forbidden(f"compute node {node_name!r} holds {cid} for another publisher")
    existing = session.get(Upload, cid)
    if existing is not None:
        if existing.held_by != node_name or existing.uploader != principal.address:
            raise Conflict(f"{cid} is already registered here as another artifact")
        return existing
    row = Upload(cid=cid, sha256=held["sha256"], size=int(held["size"]), uploader=principal.address, held_by=node_name)
    session.add(row)
    session.commit()
    return row


def listing_for(ctx: Context, upload_row: Upload, metadata: ListingMetadata, publisher: str, previous: int,
                deadline: int) -> Listing:
    """The Listing the publisher must sign for this upload and metadata."""
    return Listing(kind=Kind[metadata.kind.upper()], cid=cid_to_bytes(upload_row.cid),
                   sha256=bytes.fromhex(upload_row.sha256), metadata_hash=metadata.digest(), previous=previous,
                   nonce=ctx.chain.products.nonce(publisher), deadline=deadline)


def prepare(ctx: Context, session: Session, principal: Principal, cid: str, metadata: ListingMetadata,
            previous: int = 0, valid_seconds: int = 3600) -> dict[str, Any]:
    """The EIP-712 document for the publisher's wallet to sign (eth_signTypedData_v4)."""
    up = _own_upload(session, principal, cid)
    _check_holding(up, metadata)
    deadline = ctx.chain.w3.eth.get_block("latest")["timestamp"] + valid_seconds
    listing = listing_for(ctx, up, metadata, principal.address, previous, deadline)
    doc = typed_data.full_message("Listing", listing.message(), ctx.chain_id, ctx.chain.products.address)
    doc["message"] = {**doc["message"], "cid": "0x" + listing.cid.hex(), "sha256": "0x" + listing.sha256.hex(),
                      "metadataHash": "0x" + listing.metadata_hash.hex()}
    return doc


def _own_upload(session: Session, principal: Principal, cid: str) -> Upload:
    up = session.get(Upload, cid)
    if up is None:
        raise NotFound(f"no uploaded artifact with CID {cid}: upload it first (POST /uploads)")
    if up.uploader != principal.address:
        raise Forbidden("this artifact was uploaded by another member")
    return up


def publish(ctx: Context, session: Session, principal: Principal, cid: str, metadata: ListingMetadata,
            signature: str, nonce: int, deadline: int, previous: int = 0) -> int:
    """Verify the signed listing, record its metadata, certify it on chain; returns the certificate id."""
    require_role(ctx, principal, Role.PUBLISHER)
    up = _own_upload(session, principal, cid)
    _check_holding(up, metadata)
    if previous:
        product = session.get(Product, previous) or _product_of_certificate(session, previous)
        if product is None:
            raise NotFound(f"unknown product or certificate {previous}")
    listing = Listing(kind=Kind[metadata.kind.upper()], cid=cid_to_bytes(up.cid), sha256=bytes.fromhex(up.sha256),
                      metadata_hash=metadata.digest(), previous=previous, nonce=nonce, deadline=deadline)
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
        signer = typed_data.recover("Listing", listing.message(), sig, ctx.chain_id, ctx.chain.products.address)
    except (ValueError, TypeError):
        raise BadRequest("the listing signature is malformed (expect 65 bytes hex)") from None
    if signer != principal.address:
        raise BadRequest("rejected signature: the listing was not signed by your wallet, or the fields differ "
                         "(CID, sha-256, metadata, previous, nonce, deadline)")
    pending = session.exec(select(PendingListing).where(PendingListing.publisher == principal.address,
                                                        PendingListing.nonce == nonce)).first()
    if pending is None:
        session.add(PendingListing(publisher=principal.address, nonce=nonce, cid=up.cid,
                                   metadata_json=json.dumps(metadata.document()), metadata_hash=metadata.digest().hex()))
        session.commit()
    elif pending.metadata_hash != metadata.digest().hex() or pending.cid != up.cid:
        raise Conflict(f"nonce {nonce} was already used for another listing: prepare the listing again")
    try:
        with ctx.chain_lock:
            cert_id, _ = ctx.chain.products.register(listing, principal.address, sig)
    except ContractRevert as exc:
        raise _listing_error(exc) from None
    if ctx.settings.fault == "after_certificate":
        os._exit(17)  # test hook: die between the chain and the database
    return cert_id


def _check_holding(up: Upload, metadata: ListingMetadata) -> None:
    """Compute-only data is exactly the data a compute node holds (and named there)."""
    compute_only = metadata.sharing_mode == "compute-only"
    if compute_only and up.held_by is None:
        raise BadRequest("a compute-only data product must stay on your compute node: add it there "
                         "(gridmart compute add-dataset) and register it (POST /uploads/held), not upload it")
    if not compute_only and up.held_by is not None:
        raise BadRequest("this artifact is held on a compute node: it can only be listed with sharing_mode compute-only")
    if compute_only and (metadata.compute is None or metadata.compute.node != up.held_by):
        raise BadRequest(f"compute.node must name {up.held_by!r}, the compute node that holds this data")


def _product_of_certificate(session: Session, cert_id: int) -> Product | None:
    from ..models import Certificate

    cert = session.get(Certificate, cert_id)
    return session.get(Product, cert.product_id) if cert else None


def _listing_error(exc: ContractRevert) -> Exception:
    messages = {
        "ExpiredSignature": "the signed listing has expired: prepare and sign it again",
        "InvalidAccountNonce": "the listing nonce is stale (already used): prepare and sign it again",
        "InvalidSignature": "rejected signature: the chain did not accept the publisher's signature",
        "NotPublisher": "the signer is not an active publisher",
        "NotLatestVersion": "a new version must name the latest version of the product",
        "NotProductPublisher": "only the product's publisher may add versions",
        "UnknownCertificate": "the previous version does not exist",
    }
    if exc.error_name in ("NotPublisher", "NotProductPublisher"):
        return Forbidden(messages[exc.error_name])
    return BadRequest(messages.get(exc.error_name, str(exc)))


def set_status(ctx: Context, principal: Principal, cert_id: int, approve: bool) -> None:
    """Operator approves; operator or publisher withdraws."""
    if approve:
        require_operator(principal)
    try:
        with ctx.chain_lock:
            if approve:
                ctx.chain.products.approve(cert_id)
            else:
                cert = ctx.chain.products.certificate(cert_id)
                if not principal.is_operator and cert.publisher != principal.address:
                    raise Forbidden("only the operator or the product's publisher may withdraw it")
                ctx.chain.products.withdraw(cert_id)
    except ContractRevert as exc:
        if exc.error_name == "UnknownCertificate":
            raise NotFound(f"unknown certificate {cert_id}") from None
        if exc.error_name == "InvalidTransition":
            raise Conflict(f"certificate {cert_id} is already {'on' if approve else 'off'} the shelf") from None
        raise BadRequest(str(exc)) from None


def checksum(address: str) -> str:
    if not Web3.is_address(address):
        raise BadRequest(f"{address!r} is not an Ethereum address")
    return Web3.to_checksum_address(address)
