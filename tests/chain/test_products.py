"""ProductRegistry: EIP-712 signed certificates, version chain, shelf status."""
from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from ledger_node import typed_data
from ledger_node.contracts import Kind, Role, Status
from ledger_node.errors import ContractRevert

from .helpers import increase_time, make_listing, publish


def _register(gm, account, listing, signature=None):
    sig = signature if signature is not None else gm.products.sign_listing(account, listing)
    return gm.products.register(listing, account.address, sig)


def test_register_verifies_and_records_the_certificate(gm, member):
    pub, _ = member(Role.PUBLISHER)
    listing = make_listing(gm, pub.address, kind=Kind.TOOL)
    cert_id, receipt = _register(gm, pub, listing)  # submitted by the operator on the publisher's behalf
    cert = gm.products.certificate(cert_id)
    assert (cert.publisher, cert.product_id, cert.version, cert.kind, cert.status) == (pub.address, cert_id, 1, Kind.TOOL, Status.PENDING)
    assert cert.sha256 == listing.sha256
    event = gm.products.registration(cert_id)
    assert event["listing"] == listing
    # anyone can re-verify the publisher's signature from the event alone
    signer = typed_data.recover("Listing", listing.message(), event["signature"], gm.w3.eth.chain_id, gm.products.address)
    assert signer == pub.address


def test_forged_replayed_expired_and_wrong_chain_signatures_are_rejected(gm, member):
    pub, _ = member(Role.PUBLISHER)
    forger = Account.create()
    listing = make_listing(gm, pub.address)
    with pytest.raises(ContractRevert) as err:  # signed by someone else
        _register(gm, pub, listing, gm.products.sign_listing(forger, listing))
    assert err.value.error_name == "InvalidSignature"
    wrong_chain = typed_data.sign(pub.key, "Listing", listing.message(), 1, gm.products.address)
    with pytest.raises(ContractRevert) as err:
        _register(gm, pub, listing, wrong_chain)
    assert err.value.error_name == "InvalidSignature"
    other_contract = typed_data.sign(pub.key, "Listing", listing.message(), gm.w3.eth.chain_id, gm.licensing.address)
    with pytest.raises(ContractRevert):
        _register(gm, pub, listing, other_contract)
    tampered = dataclasses.replace(listing, sha256=b"\x00" * 32)
    with pytest.raises(ContractRevert) as err:
        _register(gm, pub, tampered, gm.products.sign_listing(pub, listing))
    assert err.value.error_name == "InvalidSignature"

    _register(gm, pub, listing)
    with pytest.raises(ContractRevert) as err:  # replay of an accepted signature
        _register(gm, pub, listing)
    assert err.value.error_name == "InvalidAccountNonce"

    expired = make_listing(gm, pub.address, deadline_in=-1)
    with pytest.raises(ContractRevert) as err:
        _register(gm, pub, expired)
    assert err.value.error_name == "ExpiredSignature"


def test_signer_must_be_an_admitted_publisher(gm, member):
    outsider = Account.create()
    with pytest.raises(ContractRevert) as err:
        _register(gm, outsider, make_listing(gm, outsider.address))
    assert err.value.error_name == "NotPublisher"
    sub, _ = member(Role.SUBSCRIBER)
    with pytest.raises(ContractRevert) as err:
        _register(gm, sub, make_listing(gm, sub.address))
    assert err.value.error_name == "NotPublisher"


def test_version_chain(gm, member):
    pub, _ = member(Role.PUBLISHER)
    rival, _ = member(Role.PUBLISHER)
    v1 = publish(gm, pub)
    v2 = publish(gm, pub, previous=v1, approve=False)
    cert = gm.products.certificate(v2)
    assert (cert.product_id, cert.version, cert.previous) == (v1, 2, v1)
    assert gm.products.latest_version(v1) == v2
    with pytest.raises(ContractRevert) as err:  # must name the latest version
        publish(gm, pub, previous=v1)
    assert err.value.error_name == "NotLatestVersion"
    with pytest.raises(ContractRevert) as err:  # only the product's publisher adds versions
        publish(gm, rival, previous=v2)
    assert err.value.error_name == "NotProductPublisher"
    with pytest.raises(ContractRevert) as err:
        publish(gm, pub, previous=10**9)
    assert err.value.error_name == "UnknownCertificate"
    v3 = publish(gm, pub, previous=v2)
    assert gm.products.history(v1) == [v1, v2, v3]


def test_status_transitions_and_who_may_change_them(gm, member):
    pub, as_pub = member(Role.PUBLISHER)
    other, as_other = member(Role.PUBLISHER)
    cert_id = publish(gm, pub, approve=False)
    with pytest.raises(ContractRevert) as err:
        as_pub.products.approve(cert_id)  # publishers cannot approve themselves
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    receipt = gm.products.approve(cert_id)
    assert gm.products.events(receipt, "StatusChanged")[0]["status"] == Status.ON_SHELF
    with pytest.raises(ContractRevert) as err:
        gm.products.approve(cert_id)
    assert err.value.error_name == "InvalidTransition"
    with pytest.raises(ContractRevert) as err:
        as_other.products.withdraw(cert_id)
    assert err.value.error_name == "Unauthorized"
    as_pub.products.withdraw(cert_id)
    assert gm.products.certificate(cert_id).status is Status.OFF_SHELF
    with pytest.raises(ContractRevert):
        gm.products.withdraw(cert_id)
    gm.products.approve(cert_id)  # the operator may put it back


def test_deadline_is_checked_against_chain_time(time_machine):
    gm, member = time_machine
    pub, _ = member(Role.PUBLISHER)
    listing = make_listing(gm, pub.address, deadline_in=60)
    sig = gm.products.sign_listing(pub, listing)
    increase_time(gm.w3, 120)
    with pytest.raises(ContractRevert) as err:
        gm.products.register(listing, pub.address, sig)
    assert err.value.error_name == "ExpiredSignature"
