"""Forged, replayed, cross-chain, wrong-domain, wrong-contract, malleable and truncated
signatures against the four signed entry points of the running marketplace, on the real chain:
EIP-712 listings (POST /listings), SIWE sign-in (POST /auth/login), Redeem vouchers
(POST /redeem) and the EIP-191 signed FL requests (here POST /fl/tasks/{id}/join), plus the
HMAC session tokens sign-in hands out.

Every case is a mutation of one valid signed request (a field changed before or after
signing, another domain or signer, or the signature bytes themselves). Each family sends its
forgeries first, then the valid request (which must be accepted: the test can fail), then
replays of it. Every forgery and replay must be refused with a 4xx (a 429 is waited out and
sent again, so the signature check itself answers): none accepted, no server error.

For EIP-191 (SIWE, FL) another encoding of the holder's own signature (high s, v 0/1 or
EIP-155 style) is the holder's signature, not a forgery: those are sent as replays of the
consumed request. EIP-712 listings and vouchers must refuse them outright (the contracts'
canonical rule: v 27/28, low s), fresh or not.
"""
from __future__ import annotations

import base64
import copy
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from fl_coordinator import auth as fl_auth
from ledger_node import typed_data
from ledger_node.typed_data import SECP256K1_N
from marketplace.services import tokens
from marketplace.services.siwe import SiweMessage

MIN_CASES = 250  # per entry point: four of them make the >= 1,000 of issue #21
RNG = random.Random(21)
Case = tuple[str, Callable[[], httpx.Response]]


def hexs(raw: bytes) -> str:
    return "0x" + raw.hex()


def corruptions(sig: bytes) -> Iterator[tuple[str, str]]:
    """Damaged, truncated, extended, re-encoded and random variants of a 65-byte signature."""
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    for i in range(65):
        for mask in (0x01, 0x80, 0xFF):
            b = bytearray(sig)
            b[i] ^= mask
            yield f"byte {i} ^ {mask:#04x}", hexs(bytes(b))
    for n in (0, 1, 32, 63, 64):
        yield f"truncated to {n} bytes", hexs(sig[:n])
    yield "extended by a zero byte", hexs(sig + b"\0")
    yield "extended by 0x1b", hexs(sig + b"\x1b")
    yield "doubled", hexs(sig + sig)
    yield "r = 0", hexs(bytes(32) + sig[32:])
    yield "s = 0", hexs(r + bytes(32) + sig[64:])
    yield "r = n", hexs(SECP256K1_N.to_bytes(32, "big") + sig[32:])
    yield "s = n", hexs(r + SECP256K1_N.to_bytes(32, "big") + sig[64:])
    yield "r = s", hexs(r + r + sig[64:])
    yield "all zero", hexs(bytes(65))
    yield "all 0xff", hexs(b"\xff" * 65)
    for other_v in (0, 1, 2, 26, 29, 30, 35, 36, 37, 38, 127, 255):
        yield f"v = {other_v}", hexs(sig[:64] + bytes((other_v,)))
    high = (SECP256K1_N - s).to_bytes(32, "big")
    yield "high s, v flipped", hexs(r + high + bytes((55 - v,)))
    yield "high s, same v", hexs(r + high + bytes((v,)))
    yield "high s, v raw 0/1", hexs(r + high + bytes((28 - v,)))
    yield "not hex", "0x" + "zz" * 65
    yield "odd-length hex", hexs(sig)[:-1]
    yield "empty", ""
    yield "bare 0x", "0x"
    yield "base64 instead of hex", base64.b64encode(sig).decode()
    for k in range(8):
        yield f"random #{k}", hexs(RNG.randbytes(64) + bytes((27 + k % 2,)))


def recovers_personal(text: str, signature: str, address: str) -> bool:
    """Whether eth_account reads `signature` as `address`'s EIP-191 signature of `text`."""
    try:
        return Account.recover_message(encode_defunct(text=text), signature=signature) == address
    except Exception:  # noqa: BLE001 - undecodable: a forgery
        return False


def paced(send: Callable[[], httpx.Response]) -> httpx.Response:
    """Send, waiting out the rate limit (a 429 says nothing about the signature): the suite
    shares one client address with every other test's sign-ins."""
    for _ in range(60):
        r = send()
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    raise AssertionError(f"still rate-limited after a minute: {r.text}")


def run_cases(cases: Iterable[Case], refused: Callable[[httpx.Response], bool] | None = None) -> tuple[int, list[str]]:
    """Send each case; returns (count, descriptions of every case not refused properly)."""
    refused = refused or (lambda r: 400 <= r.status_code < 500)
    count, bad = 0, []
    for name, send in cases:
        count += 1
        r = paced(send)
        if not refused(r):
            bad.append(f"{name}: HTTP {r.status_code} {r.text[:200]}")
    return count, bad


def check(family: str, forged: list[Case], control: Callable[[], httpx.Response],
          accepted: Callable[[httpx.Response], bool], replays: list[Case],
          refused: Callable[[httpx.Response], bool] | None = None) -> int:
    n_forged, bad = run_cases(forged, refused)
    assert not bad, f"{family}: {len(bad)} of {n_forged} forged requests not refused with a 4xx:\n" + "\n".join(bad)
    valid = paced(control)
    assert accepted(valid), f"{family}: the valid control request was refused: {valid.status_code} {valid.text[:300]}"
    n_replays, bad = run_cases(replays, refused)
    assert not bad, f"{family}: {len(bad)} of {n_replays} replays not refused with a 4xx:\n" + "\n".join(bad)
    total = n_forged + n_replays
    assert total >= MIN_CASES, (family, total)
    print(f"{family}: {n_forged} forged + {n_replays} replayed cases, all refused")
    return total


def other_keys(actors, signer) -> dict[str, Account]:
    """Keys other than `signer`'s: the operator's, members', a non-member's, random ones."""
    keys = {name: actors[name].account for name in ("operator", "outsider", "subscriber", "publisher", "member")}
    keys.update({f"random key {i}": Account.create() for i in range(3)})
    return {name: key for name, key in keys.items() if key.address != signer.address}


def sign_doc(key, doc: dict) -> bytes:
    return Account.sign_message(encode_typed_data(full_message=doc), key).signature


def domain_mutations(doc: dict, book: dict[str, str], right: str) -> Iterator[tuple[str, dict]]:
    """The same typed data under other chains, contracts and domain names (cross-chain,
    wrong-contract, wrong-domain)."""
    chain_id = doc["domain"]["chainId"]
    for name, value in [("chainId", 1), ("chainId", chain_id + 1), ("chainId", 0), ("chainId", 5),
                        ("name", "GridMart2"), ("name", "gridmart"), ("name", ""), ("version", "2"),
                        ("version", "0"), ("version", "")]:
        d = copy.deepcopy(doc)
        d["domain"][name] = value
        yield f"domain {name} = {value!r}", d
    for contract, address in sorted(book.items()):
        if contract != right:
            d = copy.deepcopy(doc)
            d["domain"]["verifyingContract"] = address
            yield f"verifying contract {contract}", d
    for label, address in [("zero", "0x" + "00" * 20), ("random", Account.create().address)]:
        d = copy.deepcopy(doc)
        d["domain"]["verifyingContract"] = address
        yield f"verifying contract {label} address", d


# ------------------------------------------------------------------ EIP-712 listings


def test_listing_signatures(market, actors, tmp_path):
    url, ctx = market
    pub = actors["publisher"]
    http = httpx.Client(base_url=url, headers=pub.headers, timeout=60)
    metadata = {"title": "signature target", "kind": "data", "tags": ["security"]}
    cids = []
    for i in range(2):
        f = tmp_path / f"artifact{i}.bin"
        f.write_bytes(secrets.token_bytes(256))
        cids.append(pub.client.upload(f)["cid"])
    doc = pub.client._request("POST", "/listings/prepare", json={"cid": cids[0], "metadata": metadata, "previous": 0})
    msg = doc["message"]
    body = {"cid": cids[0], "metadata": metadata, "previous": 0, "nonce": msg["nonce"], "deadline": msg["deadline"]}
    valid_sig = sign_doc(pub.account.key, doc)

    def post(sig: str | bytes, sent: dict | None = None, client: httpx.Client = http) -> Callable[[], httpx.Response]:
        signature = sig if isinstance(sig, str) else hexs(sig)
        return lambda: client.post("/listings", json={**(sent or body), "signature": signature})

    forged: list[Case] = [(f"signature {n}", post(s)) for n, s in corruptions(valid_sig)]
    for field, value in [("kind", (msg["kind"] + 1) % 3), ("kind", 255), ("cid", "0x" + "12" * 34),
                         ("sha256", hexs(RNG.randbytes(32))), ("metadataHash", hexs(RNG.randbytes(32))),
                         ("previous", 1), ("nonce", msg["nonce"] + 1), ("deadline", msg["deadline"] + 1),
                         ("deadline", msg["deadline"] - 1)]:
        d = copy.deepcopy(doc)
        d["message"][field] = value
        forged.append((f"signed {field} = {value!r}, sent the original", post(sign_doc(pub.account.key, d))))
    for name, d in domain_mutations(doc, ctx.chain.book.addresses, "ProductRegistry"):
        forged.append((name, post(sign_doc(pub.account.key, d))))
    for name, key in other_keys(actors, pub.account).items():
        forged.append((f"signed by {name}", post(sign_doc(key.key, doc))))
    digest = typed_data.digest("Listing", {**msg, "cid": bytes.fromhex(msg["cid"][2:]), "sha256": bytes.fromhex(msg["sha256"][2:]),
                                           "metadataHash": bytes.fromhex(msg["metadataHash"][2:])},
                               ctx.chain_id, ctx.chain.products.address)
    forged.append(("personal_sign of the EIP-712 digest",
                   post(pub.account.sign_message(encode_defunct(primitive=digest)).signature)))
    forged.append(("personal_sign of the JSON document",
                   post(pub.account.sign_message(encode_defunct(text=json.dumps(doc))).signature)))
    for label, sent in [("title", {**body, "metadata": {**metadata, "title": "another title"}}),
                        ("description", {**body, "metadata": {**metadata, "description": "added"}}),
                        ("tags", {**body, "metadata": {**metadata, "tags": ["security", "more"]}}),
                        ("kind", {**body, "metadata": {**metadata, "kind": "tool"}}),
                        ("sharing mode", {**body, "metadata": {**metadata, "sharing_mode": "remote-run"}}),
                        ("cid (another own upload)", {**body, "cid": cids[1]}),
                        ("nonce + 1", {**body, "nonce": body["nonce"] + 1}),
                        ("nonce 2^256", {**body, "nonce": 1 << 256}),
                        ("deadline + 1", {**body, "deadline": body["deadline"] + 1}),
                        ("deadline 2^256", {**body, "deadline": 1 << 256})]:
        forged.append((f"sent {label} altered after signing", post(valid_sig, sent)))
    thief = httpx.Client(base_url=url, headers=actors["member"].headers, timeout=60)
    forged.append(("the signed listing submitted by another publisher", post(valid_sig, client=thief)))
    anonymous = httpx.Client(base_url=url, timeout=60)
    forged.append(("the signed listing submitted without a session", post(valid_sig, client=anonymous)))
    expired = copy.deepcopy(doc)
    expired["message"]["deadline"] = ctx.chain.w3.eth.get_block("latest")["timestamp"] - 10
    forged.append(("properly signed, deadline passed (the chain refuses)",
                   post(sign_doc(pub.account.key, expired), {**body, "deadline": expired["message"]["deadline"]})))

    replays = [("exact replay", post(valid_sig)), ("replay by another publisher", post(valid_sig, client=thief))]
    replays += [(f"replay, signature {n}", post(s)) for n, s in corruptions(valid_sig) if "high s" in n or "v = " in n]

    check("listings", forged, post(valid_sig), lambda r: r.status_code == 201, replays)
    assert ctx.chain.products.nonce(pub.account.address) == msg["nonce"] + 1  # exactly one listing went through



# ------------------------------------------------------------------ SIWE sign-in


def test_siwe_signatures(market, actors):
    url, ctx = market
    http = httpx.Client(base_url=url, timeout=60)
    victim = actors["operator"].account  # impersonating the operator is the prize
    challenge = http.post("/auth/nonce", json={"address": victim.address}).json()
    text = challenge["message"]
    valid_sig = hexs(victim.sign_message(encode_defunct(text=text)).signature)

    def post(message: str, sig: str) -> Callable[[], httpx.Response]:
        return lambda: http.post("/auth/login", json={"message": message, "signature": sig})

    def signed(mutate: Callable[[SiweMessage], None], key=victim) -> tuple[str, str]:
        m = SiweMessage.parse(text)
        mutate(m)
        t = m.to_text()
        return t, hexs(Account.from_key(key.key).sign_message(encode_defunct(text=t)).signature)

    def at(seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))

    port = int(ctx.settings.domain.rsplit(":", 1)[1])
    mutations: list[tuple[str, Callable[[SiweMessage], None]]] = [
        ("domain evil.example", lambda m: setattr(m, "domain", "evil.example")),
        ("domain without port", lambda m: setattr(m, "domain", "127.0.0.1")),
        ("domain with another port", lambda m: setattr(m, "domain", f"127.0.0.1:{port + 1}")),
        ("domain localhost", lambda m: setattr(m, "domain", f"localhost:{port}")),
        ("URI of another site", lambda m: setattr(m, "uri", "https://evil.example/")),
        ("URI on another port", lambda m: setattr(m, "uri", f"http://127.0.0.1:{port + 1}")),
        ("URI with another scheme host", lambda m: setattr(m, "uri", f"http://evil.example:{port}")),
        ("chain id 1", lambda m: setattr(m, "chain_id", 1)),
        ("chain id + 1", lambda m: setattr(m, "chain_id", ctx.chain_id + 1)),
        ("chain id 0", lambda m: setattr(m, "chain_id", 0)),
        ("version 2", lambda m: setattr(m, "version", "2")),
        ("unknown nonce", lambda m: setattr(m, "nonce", "abcdefgh12345678")),
        ("short nonce", lambda m: setattr(m, "nonce", "abc")),
        ("issued in the future", lambda m: setattr(m, "issued_at", at(600))),
        ("issued too long ago", lambda m: setattr(m, "issued_at", at(-ctx.settings.siwe_ttl_seconds - 120))),
        ("expired", lambda m: setattr(m, "expiration_time", at(-5))),
        ("not before the future", lambda m: setattr(m, "not_before", at(600))),
        ("bad time format", lambda m: setattr(m, "issued_at", "yesterday")),
        ("address of another member", lambda m: setattr(m, "address", actors["member"].account.address)),
    ]
    forged: list[Case] = []
    for name, mutate in mutations:
        forged.append((f"signed with {name}", post(*signed(mutate))))
    for name, key in other_keys(actors, victim).items():
        forged.append((f"the operator's message signed by {name}", post(*signed(lambda m: None, key))))
        forged.append((f"{name} signs, claiming the operator's address",
                       post(*signed(lambda m, name=name: setattr(m, "statement", f"I am {name}"), key))))
    for label, altered in [("statement", text.replace("Sign in to GridMart.", "Sign in to GridMart!")),
                           ("trailing newline", text + "\n"), ("resource line", text + "\nResources:\n- https://evil.example"),
                           ("address lowercased", text.replace(victim.address, victim.address.lower())),
                           ("chain id", text.replace(f"Chain ID: {ctx.chain_id}", "Chain ID: 1")),
                           ("domain", text.replace(ctx.settings.domain, "evil.example", 1))]:
        forged.append((f"{label} altered after signing", post(altered, valid_sig)))
    forged.append(("personal_sign of another text", post(text, hexs(victim.sign_message(encode_defunct(text="hello")).signature))))
    forged.append(("not a SIWE message", post("hello", valid_sig)))
    equivalent = []
    for name, sig in corruptions(bytes.fromhex(valid_sig[2:])):
        if recovers_personal(text, sig, victim.address):
            equivalent.append((name, sig))
        else:
            forged.append((f"signature {name}", post(text, sig)))

    def accepted(r: httpx.Response) -> bool:
        if r.status_code != 200:
            return False
        me = http.get("/auth/me", headers={"Authorization": f"Bearer {r.json()['token']}"})
        return me.status_code == 200 and me.json()["address"] == victim.address

    replays = [("exact replay", post(text, valid_sig))] + [(f"replay, signature {n}", post(text, s)) for n, s in equivalent]

    total = check("SIWE", forged, post(text, valid_sig), accepted, replays)
    assert equivalent, "no re-encoding of the signature was tried as a replay"
    print(f"SIWE: {total} cases ({len(equivalent)} re-encodings of the valid signature, as replays)")


def test_session_token_forgeries(market, actors):
    """The HMAC session token sign-in hands out: tampered, re-purposed, expired, re-keyed."""
    url, ctx = market
    http = httpx.Client(base_url=url, timeout=60)
    good = actors["member"].token
    body, mac = good.split(".")
    forged_tokens = [(f"mac char {i} changed", f"{body}.{mac[:i]}{'A' if mac[i] != 'A' else 'B'}{mac[i + 1:]}")
                     for i in range(len(mac))]
    forged_tokens += [(f"body char {i} changed", f"{body[:i]}{'A' if body[i] != 'A' else 'B'}{body[i + 1:]}.{mac}")
                      for i in range(0, len(body), 3)]
    claims = json.loads(tokens._unb64(body))
    operator_body = tokens._b64(json.dumps({**claims, "sub": ctx.operator.address}, separators=(",", ":"), sort_keys=True).encode())
    forged_tokens += [
        ("sub swapped to the operator, old mac", f"{operator_body}.{mac}"),
        ("issued with another secret", tokens.issue(b"not-the-secret", "session", 3600, sub=ctx.operator.address)),
        ("a delivery token as a session", tokens.issue(ctx.secret, "delivery", 3600, sub=ctx.operator.address)),
        ("expired", tokens.issue(ctx.secret, "session", -10, sub=ctx.operator.address)),
        ("no mac", body), ("empty mac", f"{body}."), ("three parts", f"{good}.{mac}"), ("garbage", "not-a-token"),
    ]
    cases = [(name, (lambda t: lambda: http.get("/auth/me", headers={"Authorization": f"Bearer {t}"}))(t))
             for name, t in forged_tokens]
    count, bad = run_cases(cases, lambda r: r.status_code == 401)
    assert http.get("/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert not bad, "\n".join(bad)
    print(f"session tokens: {count} forged, all refused")


# ------------------------------------------------------------------ Redeem vouchers


def test_voucher_signatures(market, actors, listed):
    url, ctx = market
    http = httpx.Client(base_url=url, timeout=60)
    sub = actors["subscriber"]
    as_pub, product = listed("voucher target", "data", "month", 10)
    licence = sub.client.buy(product["product_id"], "month")["licence_id"]
    _, other_product = listed("second voucher target", "data", "month", 10)
    other_licence = sub.client.buy(other_product["product_id"], "month")["licence_id"]
    voucher = sub.client.sign_voucher(licence)
    body = {k: voucher[k] for k in ("licence_id", "nonce", "deadline", "purpose")}
    message = {"licenceId": int(licence, 16), "nonce": voucher["nonce"], "deadline": voucher["deadline"],
               "purpose": b"download".ljust(32, b"\0")}
    doc = typed_data.full_message("Redeem", message, ctx.chain_id, ctx.chain.licensing.address)
    valid_sig = bytes.fromhex(voucher["signature"][2:])
    assert sign_doc(sub.account.key, doc) == valid_sig  # the client signs exactly this document

    def post(sig: str | bytes, sent: dict | None = None) -> Callable[[], httpx.Response]:
        signature = sig if isinstance(sig, str) else hexs(sig)
        return lambda: http.post("/redeem", json={**(sent or body), "signature": signature})

    forged: list[Case] = [(f"signature {n}", post(s)) for n, s in corruptions(valid_sig)]
    for field, value in [("licenceId", int(other_licence, 16)), ("licenceId", int(licence, 16) + 1),
                         ("nonce", message["nonce"] + 1), ("nonce", message["nonce"] - 1),
                         ("deadline", message["deadline"] + 1), ("deadline", message["deadline"] - 1),
                         ("purpose", b"run".ljust(32, b"\0")), ("purpose", b"download!".ljust(32, b"\0"))]:
        d = copy.deepcopy(doc)
        d["message"][field] = value
        forged.append((f"signed {field} = {value!r}, sent the original", post(sign_doc(sub.account.key, d))))
    for name, d in domain_mutations(doc, ctx.chain.book.addresses, "Licensing"):
        forged.append((name, post(sign_doc(sub.account.key, d))))
    for name, key in {**other_keys(actors, sub.account), "the product's publisher": as_pub.account}.items():
        forged.append((f"signed by {name}", post(sign_doc(key.key, doc))))
    digest = typed_data.digest("Redeem", message, ctx.chain_id, ctx.chain.licensing.address)
    forged.append(("personal_sign of the EIP-712 digest",
                   post(sub.account.sign_message(encode_defunct(primitive=digest)).signature)))
    forged.append(("raw signature of the struct hash, no domain",
                   post(Account.unsafe_sign_hash(typed_data._k256(typed_data.type_hash("Redeem") + b"".join(
                       typed_data._word(message[n], t) for n, t in typed_data._static_fields("Redeem"))),
                       sub.account.key).signature)))
    for label, sent in [("licence id (another of the holder's)", {**body, "licence_id": other_licence}),
                        ("licence id + 1", {**body, "licence_id": hex(int(licence, 16) + 1)}),
                        ("nonce + 1", {**body, "nonce": body["nonce"] + 1}),
                        ("deadline + 1", {**body, "deadline": body["deadline"] + 1}),
                        ("deadline - 1", {**body, "deadline": body["deadline"] - 1}),
                        ("purpose run", {**body, "purpose": "run"}),
                        ("purpose padded text", {**body, "purpose": "download "})]:
        forged.append((f"sent {label} altered after signing", post(valid_sig, sent)))
    expired = copy.deepcopy(doc)
    expired["message"]["deadline"] = int(time.time()) - 5
    forged.append(("properly signed, expired", post(sign_doc(sub.account.key, expired),
                                                      {**body, "deadline": expired["message"]["deadline"]})))

    replays = [("exact replay", post(valid_sig)),
               ("replay, licence id as decimal", post(valid_sig, {**body, "licence_id": str(int(licence, 16))})),
               ("replay, purpose as hex bytes32", post(valid_sig, {**body, "purpose": hexs(b"download".ljust(32, b"\0"))}))]
    replays += [(f"replay, signature {n}", post(s)) for n, s in corruptions(valid_sig) if "high s" in n or "v = " in n]

    check("vouchers", forged, post(valid_sig), lambda r: r.status_code == 200 and "url" in r.json(), replays)


def test_delivery_link_forgeries(market, actors, listed):
    """The delivery link a redemption hands out (a bearer URL, HMAC-signed): tampered,
    re-purposed, re-keyed, expired or pointed at another product's bytes."""
    url, ctx = market
    http = httpx.Client(base_url=url, timeout=60)
    sub = actors["subscriber"]
    _, product = listed("delivery target", "data", "month", 10)
    licence = sub.client.buy(product["product_id"], "month")["licence_id"]
    delivery = sub.client.redeem(sub.client.sign_voucher(licence))
    prefix, good = delivery["url"].rsplit("/", 1)
    body, mac = good.split(".")
    claims = json.loads(tokens._unb64(body))
    forged = [(f"mac char {i} changed", f"{body}.{mac[:i]}{'A' if mac[i] != 'A' else 'B'}{mac[i + 1:]}") for i in range(len(mac))]
    forged += [(f"body char {i} changed", f"{body[:i]}{'A' if body[i] != 'A' else 'B'}{body[i + 1:]}.{mac}")
               for i in range(0, len(body), 4)]
    for field, value in [("cid", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"), ("product", claims["product"] + 1),
                         ("holder", actors["member"].account.address), ("exp", claims["exp"] + 3600), ("mode", "remote-run")]:
        altered = tokens._b64(json.dumps({**claims, field: value}, separators=(",", ":"), sort_keys=True).encode())
        forged.append((f"{field} changed, old mac", f"{altered}.{mac}"))
    other = {k: v for k, v in claims.items() if k not in ("aud", "exp")}
    forged += [("issued with another secret", tokens.issue(b"not-the-secret", "delivery", 60, **other)),
               ("a session token as a link", actors["subscriber"].token),
               ("expired", tokens.issue(ctx.secret, "delivery", -10, **other)),
               ("no mac", body), ("empty mac", f"{body}."), ("garbage", "not-a-token")]
    cases = [(name, (lambda t: lambda: http.get(f"{prefix}/{t}"))(t)) for name, t in forged]
    count, bad = run_cases(cases)
    assert http.get(delivery["url"]).status_code == 200  # the real link still works
    assert not bad, "\n".join(bad)
    print(f"delivery links: {count} forged, all refused")


# ------------------------------------------------------------------ FL requests


def test_fl_request_signatures(market, actors):
    url, _ = market
    http = httpx.Client(base_url=url, timeout=60)
    signer = actors["member"].account
    task, other_task = "0x" + secrets.token_hex(32), "0x" + secrets.token_hex(32)
    path = f"/fl/tasks/{task}/join"
    content = json.dumps({"public_key": "0x" + signer._key_obj.public_key.to_bytes().hex()}).encode()

    def headers(key=signer, method="POST", target=path, body=content, nonce=None, ts=None, address=None) -> dict:
        nonce, ts = nonce or secrets.token_hex(16), int(time.time()) if ts is None else ts
        sig = Account.from_key(key.key).sign_message(encode_defunct(text=fl_auth.message(method, target, body, nonce, ts)))
        return {fl_auth.HEADER_ADDRESS: address or key.address, fl_auth.HEADER_NONCE: nonce,
                fl_auth.HEADER_TIME: str(ts), fl_auth.HEADER_SIGNATURE: sig.signature.hex()}

    def post(h: dict, to: str = path, body: bytes = content) -> Callable[[], httpx.Response]:
        return lambda: http.post(to, content=body, headers={**h, "Content-Type": "application/json"})

    valid = headers()
    valid_text = fl_auth.message("POST", path, content, valid[fl_auth.HEADER_NONCE], int(valid[fl_auth.HEADER_TIME]))
    forged: list[Case] = []
    other_body = json.dumps({"public_key": "0x" + "04" * 64}).encode()
    forged += [
        ("body altered after signing", post(headers(), body=other_body)),
        ("body whitespace added after signing", post(headers(), body=content + b" ")),
        ("sent to another task", post(headers(), to=f"/fl/tasks/{other_task}/join")),
        ("sent to another endpoint", post(headers(), to=f"/fl/tasks/{task}/keys")),
        ("query added after signing", post(headers(), to=path + "?x=1")),
        ("signed as GET", post(headers(method="GET"))),
        ("signed for another task", post(headers(target=f"/fl/tasks/{other_task}/join"))),
        ("signed without the /fl prefix", post(headers(target=path.removeprefix("/fl")))),
        ("timestamp 400 s old", post(headers(ts=int(time.time()) - 400))),
        ("timestamp 400 s ahead", post(headers(ts=int(time.time()) + 400))),
        ("timestamp 0", post(headers(ts=0))),
    ]
    for header in (fl_auth.HEADER_ADDRESS, fl_auth.HEADER_NONCE, fl_auth.HEADER_TIME, fl_auth.HEADER_SIGNATURE):
        forged.append((f"without {header}", post({k: v for k, v in headers().items() if k != header})))
        altered = headers()
        altered[header] = {fl_auth.HEADER_ADDRESS: actors["operator"].account.address,
                           fl_auth.HEADER_NONCE: secrets.token_hex(16),
                           fl_auth.HEADER_TIME: str(int(altered[fl_auth.HEADER_TIME]) + 1),
                           fl_auth.HEADER_SIGNATURE: "00" * 65}[header]
        forged.append((f"{header} altered after signing", post(altered)))
    forged.append(("timestamp not a number", post({**headers(), fl_auth.HEADER_TIME: "soon"})))
    for name, key in other_keys(actors, signer).items():
        forged.append((f"signed by {name}, claiming the member's address", post(headers(key=key, address=signer.address))))
    forged.append(("the member signs, claiming the operator's address",
                   post(headers(address=actors["operator"].account.address))))
    equivalent = []
    for name, sig in corruptions(bytes.fromhex(valid[fl_auth.HEADER_SIGNATURE])):
        variant = {**valid, fl_auth.HEADER_SIGNATURE: sig}
        if recovers_personal(valid_text, sig, signer.address):
            equivalent.append((f"replay, signature {name}", post(variant)))
        else:
            forged.append((f"signature {name}", post(variant)))

    def accepted(r: httpx.Response) -> bool:  # the signature passed: the service answers (no such task)
        return r.status_code == 404 and "no FL task" in r.text

    replays = [("exact replay", post(valid)), ("replay to another task", post(valid, to=f"/fl/tasks/{other_task}/join"))]
    replays += equivalent

    total = check("FL requests", forged, post(valid), accepted, replays, refused=lambda r: r.status_code in (401, 409))
    print(f"FL requests: {total} cases ({len(equivalent)} re-encodings as replays)")
