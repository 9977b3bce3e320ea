"""Compute jobs, marketplace side: from a licensed subscriber's request to an anchored record.

1. ``submit`` (POST /delivery/<token>/jobs) decides what runs where: a bundle product's own
   bundle on its node, or, for compute-only data, the subscriber's algorithm on the data
   owner's node if the owner trusts it (or once the owner approves the request). It spools
   the bundle and the input here (0600), writes the job row, and only then calls the node,
   with ``ref = gm-<id>``, so a resend after a crash is the same job, never a second one.
2. ``refresh`` (the app's ticker, and every read) follows the node's state.
3. A finished job's output is fetched, checked against the CID and sha-256 the node
   reported, kept here, and the job's record is written; services.usage anchors it in the
   usage Merkle batches, and ``gridmart audit job`` verifies it.

Nothing here opens a bundle or an input: they are bytes passed on (an encrypted bundle is
decrypted, which does not parse it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from sqlmodel import Session, select

from ledger_node.content.cid import cid_to_bytes
from ledger_node.content.encryption import decrypt_stream, unwrap_key
from ledger_node.content.errors import ContentError
from ledger_node.content.ingest import PutResult, ingest
from ledger_node.contracts import Role

from ..models import ComputeJob, Upload
from . import redemption
from .auth import Principal
from .compute_nodes import node
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError, TooLarge, Unavailable

log = logging.getLogger("gridmart.jobs")

SUBMITTING, AWAITING, REJECTED = "submitting", "awaiting-approval", "rejected"
RUNNING_STATES = ("queued", "building", "running")
TERMINAL = ("done", "failed", "cancelled", REJECTED)
MAX_BUNDLE_BYTES = 256 << 20
MAX_RESULT_BYTES = 4 << 30
_FINISHING = threading.Lock()  # the ticker and a request may see the same job finish
_SUBMITTING = threading.Lock()  # two posts with one delivery link write one job


# ----------------------------------------------------------------- submit

def submit(ctx: Context, session: Session, claims: dict[str, Any], input_file: BinaryIO | None,
           algorithm_file: BinaryIO | None, algorithm_product: int | None,
           input_cid: str | None = None) -> ComputeJob:
    """Start a job for the holder of a redeemed licence (the delivery link's claims). The input
    is a posted file, or by CID one of the holder's own: an earlier job's result (to chain
    jobs) or an unencrypted upload of its own, never another member's content."""
    product_id, holder = claims["product"], claims["holder"]
    if input_file is not None and input_cid is not None:
        raise BadRequest("post either an input file or an input CID, not both")
    what = redemption._deliverable(ctx, session, product_id)
    terms = what.get("compute") or {}
    if what["mode"] == "remote-run" and what.get("bundle"):
        if algorithm_file is not None or algorithm_product is not None:
            raise BadRequest("this application runs its own bundle: post only your input")
        dataset = policy = None
    elif what["mode"] == "compute-only":
        if (algorithm_file is None) == (algorithm_product is None):
            raise BadRequest("a compute-only data product runs your algorithm on its data: post either a bundle "
                             "file (algorithm) or a certified tool (algorithm_product)")
        dataset, policy = {"cid": what["cid"], "sha256": what["sha256"]}, terms.get("output_policy") or {}
    else:
        raise BadRequest(f"product {product_id} does not run as a job (sharing mode {what['mode']})")
    node(ctx, terms.get("node", "default"))  # a node this marketplace does not know: refused before anything is kept
    return _submit(ctx, session, claims, what, terms, dataset, policy, input_file, algorithm_file,
                   algorithm_product, input_cid)


def _submit(ctx: Context, session: Session, claims: dict[str, Any], what: dict, terms: dict, dataset: dict | None,
            policy: dict | None, input_file: BinaryIO | None, algorithm_file: BinaryIO | None,
            algorithm_product: int | None, input_cid: str | None) -> ComputeJob:
    """One job per redemption (a paid use): a second post with the same link is refused,
    naming the first job; a refused post keeps nothing, so the link can be used again."""
    product_id, holder = claims["product"], claims["holder"]
    _one_job_per_redemption(session, claims.get("redemption"))  # before the upload is read
    spool = _spool_root(ctx)
    staging = Path(tempfile.mkdtemp(prefix="tmp-", dir=spool))
    try:
        if input_cid is not None:
            input_file = _own_content(ctx, session, holder, input_cid)
        if dataset is None:
            algorithm = _product_bundle(ctx, session, what, staging / "bundle")
        elif algorithm_product is not None:
            algorithm = _tool_bundle(ctx, session, algorithm_product, staging / "bundle")
        else:
            put = _spool(algorithm_file, staging / "bundle", MAX_BUNDLE_BYTES)
            algorithm = {"cid": put.cid, "sha256": put.sha256}
        trusted = dataset is None or _trusted(terms.get("trusted_algorithms", []), algorithm)
        if not trusted and not terms.get("approve_each"):
            raise Forbidden("this data product runs only the algorithms its publisher trusts "
                            f"({_trusted_list(terms)}); ask the publisher to trust yours or to approve each request")
        put = _spool(input_file, staging / "input", ctx.settings.max_upload_mb << 20) if input_file else None
        job = ComputeJob(holder=holder, product_id=product_id, certificate_id=what["certificate_id"],
                         data_publisher=_publisher(ctx, product_id) if dataset else None,
                         redemption_id=claims.get("redemption"), node=terms.get("node", "default"),
                         state=SUBMITTING if trusted else AWAITING, algorithm_cid=algorithm["cid"],
                         algorithm_sha256=algorithm["sha256"], algorithm_product=algorithm.get("product"),
                         input_cid=put.cid if put else None, input_sha256=put.sha256 if put else None,
                         dataset_cid=dataset["cid"] if dataset else None,
                         policy_json=json.dumps(policy) if policy is not None else None, created_at=int(time.time()))
        with _SUBMITTING:  # again, now that it is about to be written: two posts, one job
            _one_job_per_redemption(session, claims.get("redemption"))
            session.add(job)
            session.commit()
        session.refresh(job)
        staging.rename(spool / str(job.id))  # a crash before this leaves a tmp- folder and no row: nothing half-done
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if input_cid is not None and input_file is not None:
            input_file.close()
    if job.state == SUBMITTING:
        send(ctx, job.id)
        session.refresh(job)
    return job


def _one_job_per_redemption(session: Session, redemption_id: int | None) -> None:
    if redemption_id is None:
        return
    started = session.exec(select(ComputeJob.id).where(ComputeJob.redemption_id == redemption_id)).first()
    if started is not None:
        raise Conflict(f"this redemption already started job {started}: follow it at /jobs/{started}, "
                       "or redeem the licence again for another job")


def _own_content(ctx: Context, session: Session, holder: str, cid: str) -> BinaryIO:
    """A reader of content the holder owns, by CID: its own earlier job's result, or its own
    unencrypted upload."""
    try:
        cid_to_bytes(cid)
    except ContentError as exc:
        raise BadRequest(f"input_cid: {exc}") from None
    earlier = session.exec(select(ComputeJob).where(ComputeJob.holder == holder, ComputeJob.output_cid == cid,
                                                    ComputeJob.state == "done")).first()
    if earlier is not None:
        result = _spool_root(ctx) / str(earlier.id) / "result"
        if not result.exists():
            raise Unavailable(f"job {earlier.id}'s result is still on its way from the compute node: retry in a moment")
        return open(result, "rb")
    upload = session.get(Upload, cid)
    if upload is not None and upload.uploader == holder and not upload.encrypted and upload.held_by is None:
        return _ChunkReader(ctx.store.get_stream(cid))
    raise NotFound(f"input_cid {cid} is none of your job results or uploads here: post the file instead")


class _ChunkReader:
    """read() over an iterator of byte chunks (the content store's stream)."""

    def __init__(self, chunks):
        self.chunks, self.buffer = iter(chunks), b""

    def close(self) -> None:
        getattr(self.chunks, "close", lambda: None)()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buffer) < n:
            piece = next(self.chunks, None)
            if piece is None:
                break
            self.buffer += piece
        out, self.buffer = (self.buffer, b"") if n < 0 else (self.buffer[:n], self.buffer[n:])
        return out


def _product_bundle(ctx: Context, session: Session, what: dict, target: Path) -> dict:
    """Write the product's certified bundle (plaintext) to `target`; its CID is the certified one."""
    upload = session.get(Upload, what["cid"])
    stream = ctx.store.get_stream(what["cid"])
    if upload is not None and upload.encrypted:
        stream = decrypt_stream(stream, unwrap_key(bytes.fromhex(upload.key_envelope), ctx.operator.key),
                                expected_sha256=what["sha256"])
    digest = hashlib.sha256()
    with open(target, "wb") as fh:
        for piece in stream:
            digest.update(piece)
            fh.write(piece)
    if digest.hexdigest() != what["sha256"]:
        raise Unavailable("the stored bundle does not hash to its certificate: the operator must repair the store")
    return {"cid": what["cid"], "sha256": what["sha256"]}


def _tool_bundle(ctx: Context, session: Session, product_id: int, target: Path) -> dict:
    """A certified tool or application chosen as the algorithm: its newest approved bundle."""
    what = redemption._deliverable(ctx, session, product_id)
    if not (what["mode"] == "remote-run" and what.get("bundle")):
        raise BadRequest(f"product {product_id} is not a bundle (a remote-run tool or application)")
    return {**_product_bundle(ctx, session, what, target), "product": product_id,
            "certificate": what["certificate_id"]}


def _trusted(trusted: list, algorithm: dict) -> bool:
    """Whether the owner's certified list names this algorithm: its bundle CID, or the
    certified tool (product or certificate id) it came from."""
    names = {str(t) for t in trusted}
    return algorithm["cid"] in names or (algorithm.get("product") is not None and (
        str(algorithm["product"]) in names or str(algorithm.get("certificate")) in names))


def _trusted_list(terms: dict) -> str:
    items = [str(t) for t in terms.get("trusted_algorithms", [])]
    return ", ".join(items) if items else "none yet"


def _publisher(ctx: Context, product_id: int) -> str:
    from . import catalogue

    view = catalogue.chain_view(ctx)
    return view.certificates[view.latest[product_id]].publisher


# ----------------------------------------------------------------- node calls

def send(ctx: Context, job_id: int) -> None:
    """Hand a spooled job to its node (again, after a crash: the same ref finds the same job)."""
    with Session(ctx.engine) as session:
        job = session.get(ComputeJob, job_id)
        if job is None or job.state != SUBMITTING:
            return
        folder = _spool_root(ctx) / str(job.id)
        spec = {"ref": f"gm-{job.id}", "bundle_sha256": job.algorithm_sha256, "input_sha256": job.input_sha256,
                "dataset": {"cid": job.dataset_cid, "sha256": _dataset_sha(session, job)} if job.dataset_cid else None,
                "policy": json.loads(job.policy_json) if job.policy_json else None}
        try:
            answer = node(ctx, job.node).submit(spec, folder / "bundle",
                                                folder / "input" if job.input_cid else None)
        except Unavailable as exc:  # stays spooled; the ticker sends it when the node answers
            log.warning("job %s waits: %s", job.id, exc.message)
            return
        except ServiceError as exc:  # the node refused it: a final answer
            job.state, job.error = "failed", exc.message
            session.add(job)
            session.commit()
            _finish(ctx, job.id)
            return
        job.node_job, job.state = answer["id"], answer.get("state", "queued")
        session.add(job)
        session.commit()


def _dataset_sha(session: Session, job: ComputeJob) -> str:
    upload = session.get(Upload, job.dataset_cid)
    if upload is None:
        raise Unavailable("the index has no row for this data product's dataset: the operator must repair the index")
    return upload.sha256


def refresh(ctx: Context, job_id: int) -> ComputeJob:
    """The job as its node sees it now (a node that does not answer leaves the last state)."""
    with Session(ctx.engine) as session:
        job = session.get(ComputeJob, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.state in RUNNING_STATES and job.node_job:
            try:
                status = node(ctx, job.node).status(job.node_job)
            except Unavailable:
                return job
            job.state, job.progress = status["state"], float(status.get("progress") or 0.0)
            job.error, job.env_hash = status.get("error"), status.get("env_hash") or job.env_hash
            output = status.get("output") or {}
            job.output_cid, job.output_sha256 = output.get("cid"), output.get("sha256")
            job.output_size, job.media_type = output.get("size"), output.get("media_type")
            session.add(job)
            session.commit()
        finished = job.state in TERMINAL and job.pending
    if finished:
        _finish(ctx, job_id)
    with Session(ctx.engine) as session:
        return session.get(ComputeJob, job_id)


def tick(ctx: Context) -> None:
    """Send what waits, follow what runs (the app's ticker, once a second)."""
    with Session(ctx.engine) as session:
        rows = session.exec(select(ComputeJob.id, ComputeJob.state).where(ComputeJob.pending == True)).all()  # noqa: E712
    for job_id, state in rows:
        try:
            if state == SUBMITTING:
                send(ctx, job_id)
            else:
                refresh(ctx, job_id)
        except Exception:  # noqa: BLE001 - one job's trouble must not stop the others
            log.exception("following job %s failed", job_id)


def _finish(ctx: Context, job_id: int) -> None:
    """Fetch and check a finished job's output, then write its record (once)."""
    with _FINISHING, Session(ctx.engine) as session:
        job = session.get(ComputeJob, job_id)
        if job is None or not job.pending or job.state not in TERMINAL:
            return
        folder = _spool_root(ctx) / str(job.id)
        if job.state == "done":
            try:
                _fetch_output(ctx, job, folder)
            except Unavailable as exc:
                log.warning("job %s: output not fetched yet: %s", job.id, exc.message)
                return
            except Conflict as exc:
                job.state, job.error = "failed", exc.message
        job.finished_at = job.finished_at or int(time.time())
        job.at = job.finished_at  # the record's time: the usage batches' window holds it
        job.record_json, job.pending = _canonical(record(job)), False
        session.add(job)
        session.commit()
        for name in ("bundle", "input"):
            (folder / name).unlink(missing_ok=True)


def _fetch_output(ctx: Context, job: ComputeJob, folder: Path) -> None:
    target, part = folder / "result", folder / "result.part"
    if not target.exists():
        node(ctx, job.node).result_to(job.node_job, part, min(job.output_size or MAX_RESULT_BYTES, MAX_RESULT_BYTES))
        with open(part, "rb") as fh:
            got = ingest(fh, lambda cid, block: None)
        if (got.cid, got.sha256) != (job.output_cid, job.output_sha256):
            part.unlink(missing_ok=True)
            raise Conflict(f"the node's output hashes to {got.cid}, not the {job.output_cid} it reported")
        part.rename(target)


# ----------------------------------------------------------------- the record

def record(job: ComputeJob) -> dict[str, Any]:
    """What is anchored for every job, whatever its end."""
    return {"kind": "job", "job": job.id, "holder": job.holder, "product": job.product_id,
            "certificate": job.certificate_id, "redemption": job.redemption_id, "node": job.node,
            "node_job": job.node_job, "algorithm": job.algorithm_cid, "algorithm_sha256": job.algorithm_sha256,
            "algorithm_product": job.algorithm_product, "inputs": [job.input_cid] if job.input_cid else [],
            "dataset": job.dataset_cid, "env": job.env_hash, "output": job.output_cid,
            "output_sha256": job.output_sha256, "state": job.state, "error": _shown_error(job, full=False),
            "submitted_at": job.created_at, "finished_at": job.finished_at, "at": job.at}


def _canonical(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------- who may do what

def get(ctx: Context, session: Session, principal: Principal, job_id: int) -> ComputeJob:
    job = session.get(ComputeJob, job_id)
    if job is None or not _may_see(ctx, principal, job):
        raise NotFound(f"no job {job_id} of yours")
    return job


def _may_see(ctx: Context, principal: Principal, job: ComputeJob) -> bool:
    return principal.address in (job.holder, job.data_publisher) or principal.is_operator or \
        ctx.chain.members.is_active_with_role(principal.address, Role.AUDITOR)


def view(job: ComputeJob, principal: Principal | None = None) -> dict[str, Any]:
    """The job as `principal` sees it (None: its holder, through its delivery link). For
    compute-only data only the data owner and the operator see an error's lines after the
    first (docs/compute.md): they, like the logs, are the algorithm's own output and could
    carry data rows past the output policy."""
    out = {"id": job.id, "state": job.state, "progress": job.progress, "product_id": job.product_id,
           "holder": job.holder, "data_publisher": job.data_publisher, "node": job.node, "algorithm": job.algorithm_cid,
           "algorithm_product": job.algorithm_product, "input": job.input_cid, "env_hash": job.env_hash,
           "output": {"cid": job.output_cid, "sha256": job.output_sha256, "size": job.output_size,
                      "media_type": job.media_type} if job.output_cid else None,
           "error": job.error, "created_at": job.created_at, "finished_at": job.finished_at,
           "recorded": not job.pending, "anchored_batch": job.batch_id, "compute_only": job.dataset_cid is not None}
    out["error"] = _shown_error(job, full=principal is not None and _sees_everything(principal, job))
    return out


def _sees_everything(principal: Principal, job: ComputeJob) -> bool:
    """Whether `principal` may read a job's full error and its logs: on compute-only data only
    the data owner and the operator (the algorithm's prints could carry data rows); otherwise
    anyone who may see the job."""
    return job.dataset_cid is None or principal.is_operator or principal.address == job.data_publisher


def _shown_error(job: ComputeJob, full: bool) -> str | None:
    """The error as shown (and, `full` False, as anchored for everyone to read): for compute-only
    data its first line, the node's reason, never the algorithm's output."""
    if not job.error or full or job.dataset_cid is None:
        return job.error
    return job.error.splitlines()[0][:300]


def mine(session: Session, principal: Principal) -> list[ComputeJob]:
    return list(session.exec(select(ComputeJob).where((ComputeJob.holder == principal.address)
                                                      | (ComputeJob.data_publisher == principal.address))
                             .order_by(ComputeJob.id.desc()).limit(200)))


def logs(ctx: Context, session: Session, principal: Principal, job_id: int, offset: int) -> tuple[str, int]:
    job = get(ctx, session, principal, job_id)
    if not _sees_everything(principal, job):
        raise Forbidden("the logs of a job on compute-only data stay with the data owner (they could hold data rows)")
    if not job.node_job:
        return "", offset
    return node(ctx, job.node).logs(job.node_job, offset)


def cancel(ctx: Context, session: Session, principal: Principal, job_id: int) -> ComputeJob:
    job = get(ctx, session, principal, job_id)
    if principal.address != job.holder and not principal.is_operator:
        raise Forbidden("only the job's holder or the operator may cancel it")
    if job.state in TERMINAL:
        raise Conflict(f"job {job_id} has already ended ({job.state})")
    if job.node_job:
        node(ctx, job.node).cancel(job.node_job)
        return refresh(ctx, job_id)
    job.state, job.error = "cancelled", "cancelled before it reached the compute node"
    session.add(job)
    session.commit()
    _finish(ctx, job_id)
    return refresh(ctx, job_id)


def decide(ctx: Context, session: Session, principal: Principal, job_id: int, approve: bool) -> ComputeJob:
    """The data owner approves (the job is sent) or rejects a request to run an untrusted algorithm."""
    job = get(ctx, session, principal, job_id)
    if principal.address != job.data_publisher:
        raise Forbidden("only the data product's publisher may approve or reject this request")
    if job.state != AWAITING:
        raise Conflict(f"job {job_id} is not awaiting approval ({job.state})")
    job.state = SUBMITTING if approve else REJECTED
    if not approve:
        job.error = "the data owner rejected this algorithm"
    session.add(job)
    session.commit()
    if approve:
        send(ctx, job_id)
    else:
        _finish(ctx, job_id)
    return refresh(ctx, job_id)


def algorithm_path(ctx: Context, session: Session, principal: Principal, job_id: int) -> Path:
    """The algorithm of a request awaiting approval, for its data owner to read before deciding."""
    job = get(ctx, session, principal, job_id)
    if principal.address != job.data_publisher:
        raise Forbidden("only the data product's publisher may read a requested algorithm")
    path = _spool_root(ctx) / str(job.id) / "bundle"
    if not path.exists():
        raise NotFound("this job's algorithm is no longer kept here (the job has ended)")
    return path


def result_path(ctx: Context, session: Session, principal: Principal, job_id: int) -> tuple[ComputeJob, Path]:
    job = refresh(ctx, get(ctx, session, principal, job_id).id)
    if principal.address != job.holder:
        raise Forbidden("only the job's holder may fetch its result")
    if job.state != "done":
        raise Conflict(f"job {job_id} has no result: it is {job.state}"
                       + (f" ({job.error})" if job.error and job.state == "failed" else ""))
    path = _spool_root(ctx) / str(job.id) / "result"
    if not path.exists():
        raise Unavailable("the result is still being fetched from the compute node: retry in a moment")
    return job, path


# ----------------------------------------------------------------- spool

def _spool_root(ctx: Context) -> Path:
    root = ctx.settings.resolved_compute_spool()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


class _Tee:
    """A reader that also writes what it reads, up to a limit."""

    def __init__(self, src: BinaryIO, sink: BinaryIO, limit: int):
        self.src, self.sink, self.limit, self.count = src, sink, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(f"the file is larger than {self.limit >> 20} MiB")
        self.sink.write(data)
        return data


def _spool(stream: BinaryIO, path: Path, limit: int) -> PutResult:
    """Write `stream` to `path` and return its CID, sha-256 and size (as the content store computes them)."""
    try:
        with open(path, "wb") as fh:
            return ingest(_Tee(stream, fh, limit), lambda cid, block: None)
    except ContentError as exc:
        raise BadRequest(f"could not read the posted file: {exc}") from None
