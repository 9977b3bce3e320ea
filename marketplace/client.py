"""HTTP client of the marketplace API, signing with a local wallet (used by the CLI and tests)."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount

from ledger_node import typed_data
from ledger_node.content.encryption import decrypt_stream, unwrap_key
from ledger_node.errors import GridMartError, IntegrityError


class ApiError(GridMartError):
    """The API answered with an error; carries its status code."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{detail} (HTTP {status})")
        self.status, self.detail = status, detail


class _ProgressFile:
    def __init__(self, fh, progress: Callable[[int], None] | None):
        self.fh, self.progress = fh, progress

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        if self.progress and data:
            self.progress(len(data))
        return data


class MarketClient:
    def __init__(self, base_url: str, account: LocalAccount | None = None, *, transport: Any = None,
                 timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)
        self.token: str | None = None
        self.token_expires = 0.0
        self._config: dict | None = None

    # -------------------------------------------------------------- plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            r = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.ConnectError:
            raise GridMartError(f"cannot reach the marketplace at {self.base_url}: start it with `make up` "
                                "or set GRIDMART_API_URL") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(r.status_code, str(detail))
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    def config(self) -> dict:
        if self._config is None:
            self._config = self._request("GET", "/config")
        return self._config

    def _need_account(self) -> LocalAccount:
        if self.account is None:
            raise GridMartError("this action needs a wallet: pass --wallet")
        return self.account

    # -------------------------------------------------------------- auth

    def login(self) -> str:
        account = self._need_account()
        challenge = self._request("POST", "/auth/nonce", json={"address": account.address})
        message = challenge["message"]
        signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
        answer = self._request("POST", "/auth/login", json={"message": message, "signature": signature})
        self.token, self.token_expires = answer["token"], time.time() + answer.get("expires_in", 0)
        return self.token

    # -------------------------------------------------------------- operator

    def admit(self, address: str, name: str, identity_document: bytes, roles: list[str]) -> dict:
        return self._request("POST", "/members", json={"address": address, "name": name, "roles": roles,
                                                       "identity_document_b64": base64.b64encode(identity_document).decode()})

    def approve(self, cert_id: int) -> dict:
        return self._request("POST", f"/certificates/{cert_id}/approve")

    def withdraw(self, cert_id: int) -> dict:
        return self._request("POST", f"/certificates/{cert_id}/withdraw")

    # -------------------------------------------------------------- publisher

    def upload(self, path: Path, encrypt: bool = False, progress: Callable[[int], None] | None = None) -> dict:
        with open(path, "rb") as fh:
            files = {"file": (path.name, _ProgressFile(fh, progress), "application/octet-stream")}
            return self._request("POST", "/uploads", params={"encrypt": encrypt}, files=files)

    def publish(self, path: Path, metadata: dict, encrypt: bool = False, previous: int = 0,
                progress: Callable[[int], None] | None = None) -> dict:
        """Upload, sign the listing with the wallet (EIP-712), and certify it."""
        self._need_account()
        up = self.upload(path, encrypt, progress)
        return {**self.list_cid(up["cid"], metadata, previous), **up}

    def register_held(self, node: str, cid: str) -> dict:
        """Register compute-only data your compute node `node` holds (its bytes never leave it)."""
        return self._request("POST", "/uploads/held", json={"node": node, "cid": cid})

    def list_cid(self, cid: str, metadata: dict, previous: int = 0) -> dict:
        """Sign the listing of an uploaded or held artifact with the wallet (EIP-712) and certify it."""
        account = self._need_account()
        doc = self._request("POST", "/listings/prepare", json={"cid": cid, "metadata": metadata, "previous": previous})
        signature = account.sign_message(encode_typed_data(full_message=doc)).signature.to_0x_hex()
        msg = doc["message"]
        return self._request("POST", "/listings", json={"cid": cid, "metadata": metadata, "previous": previous,
                                                        "signature": signature, "nonce": msg["nonce"],
                                                        "deadline": msg["deadline"]})

    def _send_tx(self, body: dict) -> dict:
        account = self._need_account()
        tx = self._request("POST", "/tx/prepare", json=body)
        signed = account.sign_transaction(tx)
        return self._request("POST", "/tx", json={"action": body["action"], "signed_tx": signed.raw_transaction.to_0x_hex()})

    def fund_task(self, chain_task_id: int, amount: int) -> dict:
        """Move `amount` of your points into the reward pool of your federated-learning task."""
        return self._send_tx({"action": "fund_task", "task_id": chain_task_id, "amount": amount})

    def set_plan(self, product_id: int, plan: str, price: int, uses: int = 0) -> dict:
        return self._send_tx({"action": "set_plan", "product_id": product_id, "plan": plan, "price": price, "uses": uses})

    # -------------------------------------------------------------- subscriber

    def catalogue(self, **filters: Any) -> list[dict]:
        return self._request("GET", "/products", params={k: v for k, v in filters.items() if v is not None})

    def product(self, product_id: int) -> dict:
        return self._request("GET", f"/products/{product_id}")

    def buy(self, product_id: int, plan: str) -> dict:
        return self._send_tx({"action": "purchase", "product_id": product_id, "plan": plan})

    def licences(self) -> list[dict]:
        return self._request("GET", "/licences")

    def points(self) -> dict:
        return self._request("GET", "/points")

    def sign_voucher(self, licence_id: str, purpose: str = "download", nonce: int | None = None,
                     valid_seconds: int = 300) -> dict:
        account = self._need_account()
        cfg = self.config()
        voucher = {"licence_id": licence_id, "nonce": nonce if nonce is not None else time.time_ns() // 1000,
                   "deadline": int(time.time()) + valid_seconds, "purpose": purpose}
        message = {"licenceId": int(licence_id, 16), "nonce": voucher["nonce"], "deadline": voucher["deadline"],
                   "purpose": purpose.encode().ljust(32, b"\0")}
        sig = typed_data.sign(account.key, "Redeem", message, cfg["chain_id"], cfg["contracts"]["Licensing"])
        return {**voucher, "signature": "0x" + sig.hex()}

    def redeem(self, voucher: dict) -> dict:
        return self._request("POST", "/redeem", json=voucher)

    def download(self, delivery: dict, out: Path, progress: Callable[[int], None] | None = None,
                 expected_sha256: str | None = None) -> Path:
        """Stream the delivered artifact to `out`, decrypting it with the wallet if needed, and
        check its sha-256 against `expected_sha256` (read from the chain by the caller; default:
        the API's word). Nothing is left at `out` unless the whole file checks out."""
        expected = (expected_sha256 or delivery["sha256"]).lower().removeprefix("0x")
        tmp = out.with_name(out.name + ".part")
        try:
            with self.http.stream("GET", delivery["url"]) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(r.status_code, r.json().get("detail", r.text))
                chunks = r.iter_bytes(1 << 20)
                if delivery.get("encrypted"):
                    key = unwrap_key(bytes.fromhex(delivery["wrapped_key"]), self._need_account().key)
                    chunks = decrypt_stream(chunks, key, expected_sha256=expected)
                digest = hashlib.sha256()
                with open(tmp, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        digest.update(chunk)
                        if progress:
                            progress(len(chunk))
            if digest.hexdigest() != expected:
                raise IntegrityError(f"the downloaded bytes hash to {digest.hexdigest()}, the certificate says {expected}: "
                                     "not saved")
            tmp.replace(out)
        except httpx.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"the download was cut short ({type(exc).__name__}): the marketplace could not "
                                 "deliver bytes matching the certificate; not saved") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return out

    def run(self, delivery: dict, input_path: Path) -> bytes:
        with open(input_path, "rb") as fh:
            return self._request("POST", delivery["run_url"], files={"file": (input_path.name, fh, "text/csv")})

    # -------------------------------------------------------------- compute jobs

    def start_job(self, delivery: dict, input_path: Path | None = None, algorithm: Path | None = None,
                  algorithm_product: int | None = None, input_cid: str | None = None) -> dict:
        """Start a job with a redeemed licence's link: a bundle application on your input (a
        file, or by CID one of your earlier results), or (compute-only data) your algorithm, a
        bundle file or a certified tool, on the data."""
        if "jobs_url" not in delivery:
            raise GridMartError("this licence's product does not run as a compute job (its redemption gave no jobs link)")
        with contextlib.ExitStack() as stack:
            files = {name: (path.name, stack.enter_context(open(path, "rb")), "application/octet-stream")
                     for name, path in (("input", input_path), ("algorithm", algorithm)) if path is not None}
            data = {k: str(v) for k, v in (("algorithm_product", algorithm_product), ("input_cid", input_cid))
                    if v is not None}
            return self._request("POST", delivery["jobs_url"], files=files or None, data=data or None)

    def jobs(self) -> list[dict]:
        return self._request("GET", "/jobs")

    def job(self, job_id: int) -> dict:
        return self._request("GET", f"/jobs/{job_id}")

    def job_logs(self, job_id: int, offset: int = 0) -> tuple[str, int]:
        """The job's log from byte `offset`, and the offset to ask for next."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        r = self.http.get(f"/jobs/{job_id}/logs", params={"offset": offset}, headers=headers)
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.json().get("detail", r.text))
        return r.text, int(r.headers.get("X-Next-Offset", offset))

    def cancel_job(self, job_id: int) -> dict:
        return self._request("POST", f"/jobs/{job_id}/cancel")

    def decide_job(self, job_id: int, approve: bool) -> dict:
        """The data owner approves or rejects a request to run an algorithm on its compute-only data."""
        return self._request("POST", f"/jobs/{job_id}/{'approve' if approve else 'reject'}")

    def job_proof(self, job_id: int) -> dict:
        return self._request("GET", f"/jobs/{job_id}/proof")

    def job_result(self, job_id: int, out: Path) -> dict:
        """Save a finished job's output to `out` (never over an existing file), checked against
        the sha-256 the job's record names."""
        job = self.job(job_id)
        if job["state"] != "done":
            raise GridMartError(f"job {job_id} has no result: it is {job['state']}"
                                + (f" ({job['error']})" if job.get("error") else ""))
        expected = job["output"]["sha256"]
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        tmp = Path(name)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with self.http.stream("GET", f"/jobs/{job_id}/result", headers=headers) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(r.status_code, r.json().get("detail", r.text))
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as fh:
                    for chunk in r.iter_bytes(1 << 20):
                        fh.write(chunk)
                        digest.update(chunk)
            if digest.hexdigest() != expected:
                raise IntegrityError(f"the result hashes to {digest.hexdigest()}, the job's record says {expected}: "
                                     "not saved")
            try:
                os.link(tmp, out)  # never over a file, even one created meanwhile
            except FileExistsError:
                raise GridMartError(f"{out} already exists: choose another --out or remove it") from None
        finally:
            tmp.unlink(missing_ok=True)
        return {**job["output"], "file": str(out)}
