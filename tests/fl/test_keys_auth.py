"""Key envelopes (ECIES to wallet keys) and EIP-191 request signatures."""
from __future__ import annotations

import time

import pytest
from eth_account import Account

from fl_coordinator.auth import HEADER_TIME, Verifier, sign_request
from fl_coordinator.errors import Refused
from fl_coordinator.keys import address_of_public_key, seal, unseal, wallet_public_key


def test_envelope_opens_only_with_the_right_wallet():
    alice, bob = Account.create(), Account.create()
    secret = b"he-secret" * 1000
    env = seal(wallet_public_key(alice.key), secret)
    assert secret not in env
    assert unseal(alice.key, env) == secret
    with pytest.raises(Refused, match="does not open"):
        unseal(bob.key, env)


def test_public_key_maps_to_address():
    a = Account.create()
    assert address_of_public_key(wallet_public_key(a.key)) == a.address
    with pytest.raises(Refused, match="64-byte"):
        address_of_public_key("0x1234")
    with pytest.raises(Refused, match="64-byte"):
        address_of_public_key("11" * 64)  # right length, not a curve point


def test_signed_request_verifies_and_cannot_be_replayed_or_altered():
    a = Account.create()
    v = Verifier()
    body = b'{"x": 1}'
    h = sign_request(a.key, "POST", "/fl/tasks/0x1/join", body)
    assert v.verify("POST", "/fl/tasks/0x1/join", body, h) == a.address
    with pytest.raises(Refused, match="replayed") as exc:
        v.verify("POST", "/fl/tasks/0x1/join", body, h)
    assert exc.value.status == 409
    h2 = sign_request(a.key, "POST", "/fl/tasks/0x1/join", body)
    with pytest.raises(Refused, match="does not match"):
        v.verify("POST", "/fl/tasks/0x2/join", body, h2)  # moved to another task
    h3 = sign_request(a.key, "POST", "/p", body)
    with pytest.raises(Refused, match="does not match"):
        v.verify("POST", "/p", b'{"x": 2}', h3)  # altered body
    h4 = {**sign_request(a.key, "POST", "/p", body), "X-GM-Address": Account.create().address}
    with pytest.raises(Refused, match="does not match"):
        v.verify("POST", "/p", body, h4)
    with pytest.raises(Refused, match="not signed"):
        v.verify("POST", "/p", body, {})


def test_stale_timestamp_refused():
    a = Account.create()
    h = sign_request(a.key, "POST", "/p", b"")
    v = Verifier(clock=lambda: int(h[HEADER_TIME]) + 3600)
    with pytest.raises(Refused, match="clock"):
        v.verify("POST", "/p", b"", h)
    assert Verifier(clock=time.time).verify("POST", "/p", b"", h) == a.address
