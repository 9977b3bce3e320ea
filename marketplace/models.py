"""SQLModel tables: an index of the chain plus off-chain metadata. The chain stays the truth."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, UniqueConstraint, false
from sqlmodel import Field, SQLModel

#: for an integer that can pass 2^31 (byte sizes, nonces chosen by wallets, timestamps, point
#: amounts): PostgreSQL's INTEGER is 32-bit, SQLite's is 64-bit either way
BIG = {"sa_type": BigInteger}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Member(SQLModel, table=True):
    address: str = Field(primary_key=True)
    name: str
    identity_hash: str
    roles: int
    status: str = "active"
    admitted_block: int = 0


class WalletKey(SQLModel, table=True):
    """A wallet's public key, recovered from its SIWE signature; content keys are wrapped to it."""

    address: str = Field(primary_key=True)
    public_key: str


class Upload(SQLModel, table=True):
    """An artifact in the content store, not yet (or already) certified."""

    cid: str = Field(primary_key=True)
    sha256: str  # of the plaintext
    size: int = Field(**BIG)
    encrypted: bool = False
    key_envelope: str | None = None  # content key wrapped to the operator's key (hex)
    uploader: str
    #: compute-only data: the compute node that holds the bytes (none of them are here)
    held_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PendingListing(SQLModel, table=True):
    """Off-chain metadata of a listing, written before its certificate is submitted.

    The indexer joins a CertificateRegistered event with this row (by publisher and
    nonce), so a crash between the chain and the database loses nothing.
    """

    __table_args__ = (UniqueConstraint("publisher", "nonce"),)
    id: int | None = Field(default=None, primary_key=True)
    publisher: str = Field(index=True)
    nonce: int = Field(**BIG)
    cid: str
    metadata_json: str
    metadata_hash: str
    created_at: datetime = Field(default_factory=utcnow)


class Product(SQLModel, table=True):
    id: int = Field(primary_key=True)  # = id of its first certificate
    publisher: str = Field(index=True)
    kind: str = Field(index=True)
    title: str = ""
    description: str = ""
    tags: str = ""  # comma-separated, lower case
    sharing_mode: str = "download"
    licence_terms: str = ""
    latest_certificate: int = 0
    status: str = "pending"  # of the latest version


class Certificate(SQLModel, table=True):
    id: int = Field(primary_key=True)
    product_id: int = Field(index=True)
    version: int
    previous: int = 0
    publisher: str
    kind: str
    cid: str
    sha256: str
    metadata_hash: str
    metadata_json: str = "{}"
    status: str = "pending"
    signature: str
    nonce: int = Field(**BIG)
    block_number: int
    block_time: int = Field(default=0, **BIG)
    tx_hash: str


class Plan(SQLModel, table=True):
    product_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    price: int = Field(**BIG)
    uses: int = 0


class Licence(SQLModel, table=True):
    id: str = Field(primary_key=True)  # 0x-hex of the on-chain id
    product_id: int = Field(index=True)
    holder: str = Field(index=True)
    expires_at: int = Field(default=0, **BIG)
    uses_left: int = 0
    revoked: bool = False


class Purchase(SQLModel, table=True):
    tx_hash: str = Field(primary_key=True)
    log_index: int = Field(primary_key=True)
    licence_id: str = Field(index=True)
    product_id: int
    holder: str = Field(index=True)
    plan: str
    price: int = Field(**BIG)
    fee: int = Field(**BIG)
    block_number: int


class PointMovement(SQLModel, table=True):
    tx_hash: str = Field(primary_key=True)
    log_index: int = Field(primary_key=True)
    sender: str = Field(index=True)  # 0x0 for a grant
    recipient: str = Field(index=True)
    amount: int = Field(**BIG)
    block_number: int


class Redemption(SQLModel, table=True):
    """One accepted voucher; also the usage record that gets anchored. The one record of spent
    vouchers: both redemption paths and the indexer's copy of on-chain `Redeemed` events write
    it (services.redemption)."""

    __table_args__ = (UniqueConstraint("holder", "nonce"),)
    id: int | None = Field(default=None, primary_key=True)
    licence_id: str = Field(index=True)
    holder: str
    nonce: int = Field(**BIG)
    purpose: str
    on_chain_tx: str | None = None
    at: int = Field(**BIG)
    record_json: str
    #: reserved before the voucher is submitted on chain; not anchored until settled
    pending: bool = Field(default=False, index=True, sa_column_kwargs={"server_default": false()})
    batch_root: str | None = Field(default=None, index=True)  # set before the anchor tx is sent
    batch_id: int | None = Field(default=None, index=True)
    leaf_index: int | None = None


class ComputeJob(SQLModel, table=True):
    """A job on a compute node (services.jobs); once finished, its record is anchored like a
    usage record (the columns from `at` on are those services.usage batches)."""

    id: int | None = Field(default=None, primary_key=True)
    holder: str = Field(index=True)
    product_id: int = Field(index=True)
    certificate_id: int
    #: the data product's publisher for compute-to-data (approves requests), else None
    data_publisher: str | None = Field(default=None, index=True)
    redemption_id: int | None = Field(default=None, index=True)  # one job per redemption (a paid use)
    node: str
    node_job: str | None = None
    #: submitting (spooled here, not yet on the node), awaiting-approval, rejected, then the node's
    #: queued, building, running, done, failed, cancelled
    state: str = Field(index=True)
    progress: float = 0.0
    error: str | None = None
    algorithm_cid: str
    algorithm_sha256: str
    algorithm_product: int | None = None
    input_cid: str | None = None
    input_sha256: str | None = None
    dataset_cid: str | None = None
    policy_json: str | None = None
    env_hash: str | None = None
    output_cid: str | None = None
    output_sha256: str | None = None
    output_size: int | None = Field(default=None, **BIG)
    media_type: str | None = None
    created_at: int = Field(**BIG)
    finished_at: int | None = Field(default=None, **BIG)
    at: int = Field(default=0, **BIG)
    record_json: str = ""
    #: true until the job has finished and its record is written: not anchored before
    pending: bool = Field(default=True, index=True)
    batch_root: str | None = Field(default=None, index=True)
    batch_id: int | None = Field(default=None, index=True)
    leaf_index: int | None = None


class UsageBatch(SQLModel, table=True):
    id: int = Field(primary_key=True)  # on-chain batch id
    root: str
    count: int
    from_time: int = Field(**BIG)
    to_time: int = Field(**BIG)
    tx_hash: str


class FlRound(SQLModel, table=True):
    task_id: int = Field(primary_key=True)
    round: int = Field(primary_key=True)
    model_cid: str
    partners_json: str
    block_number: int


class SiweNonce(SQLModel, table=True):
    nonce: str = Field(primary_key=True)
    issued_at: int = Field(**BIG)
    used: bool = False


class IndexedBlock(SQLModel, table=True):
    """Hashes of recently indexed blocks, to detect a re-org and rewind."""

    number: int = Field(primary_key=True)
    hash: str


class IndexMeta(SQLModel, table=True):
    """Facts about the index itself, e.g. which chain it was made on (services.chain_identity)."""

    key: str = Field(primary_key=True)
    value: str
