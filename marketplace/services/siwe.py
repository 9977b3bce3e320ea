"""Sign-In with Ethereum (EIP-4361): build, parse and verify messages.

The PyPI `siwe` package does not import with current `abnf`, so this module implements
the message format of the EIP directly: the fixed header lines, then `Key: value` fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_keys import keys

_HEADER = re.compile(r"^(?P<domain>[^\s]+) wants you to sign in with your Ethereum account:\n(?P<address>0x[a-fA-F0-9]{40})\n")
_FIELDS = {"URI": "uri", "Version": "version", "Chain ID": "chain_id", "Nonce": "nonce", "Issued At": "issued_at",
           "Expiration Time": "expiration_time", "Not Before": "not_before", "Request ID": "request_id"}


class SiweError(ValueError):
    """The message is malformed or does not verify."""


@dataclass
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = "1"
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        lines = [f"{self.domain} wants you to sign in with your Ethereum account:", self.address, ""]
        if self.statement:
            lines += [self.statement, ""]
        lines += [f"URI: {self.uri}", f"Version: {self.version}", f"Chain ID: {self.chain_id}",
                  f"Nonce: {self.nonce}", f"Issued At: {self.issued_at}"]
        if self.expiration_time:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {r}" for r in self.resources]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> "SiweMessage":
        m = _HEADER.match(text)
        if not m:
            raise SiweError("not an EIP-4361 message: the first lines must be '<domain> wants you to sign in ...' and the address")
        rest = text[m.end():].split("\n")
        if not rest or rest[0] != "":
            raise SiweError("malformed SIWE message: a blank line must follow the address")
        rest = rest[1:]
        statement = None
        if rest and not rest[0].startswith("URI: "):
            statement = rest[0]
            if len(rest) < 2 or rest[1] != "":
                raise SiweError("malformed SIWE message: a blank line must follow the statement")
            rest = rest[2:]
        values: dict[str, str] = {}
        resources: list[str] = []
        in_resources = False
        for line in rest:
            if in_resources:
                if not line.startswith("- "):
                    raise SiweError(f"malformed resource line {line!r}")
                resources.append(line[2:])
                continue
            if line == "Resources:":
                in_resources = True
                continue
            key, sep, value = line.partition(": ")
            if not sep or key not in _FIELDS:
                raise SiweError(f"malformed SIWE field line {line!r}")
            values[_FIELDS[key]] = value
        for required in ("uri", "version", "chain_id", "nonce", "issued_at"):
            if required not in values:
                raise SiweError(f"SIWE message lacks the '{required}' field")
        if values["version"] != "1":
            raise SiweError("SIWE version must be 1")
        if not re.fullmatch(r"[A-Za-z0-9]{8,}", values["nonce"]):
            raise SiweError("SIWE nonce must be at least 8 alphanumeric characters")
        try:
            chain_id = int(values.pop("chain_id"))
        except ValueError:
            raise SiweError("SIWE Chain ID must be an integer") from None
        return cls(domain=m["domain"], address=m["address"], statement=statement, chain_id=chain_id,
                   resources=resources, **values)


def parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise SiweError(f"invalid RFC 3339 time {value!r}") from None


def recover(text: str, signature: str | bytes) -> tuple[str, str]:
    """(address, uncompressed public key hex) that signed `text` with personal_sign."""
    message = encode_defunct(text=text)
    try:
        sig = keys.Signature(signature_bytes=_normalise(signature))
        public_key = sig.recover_public_key_from_msg_hash(_hash_eip191_message(message))
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad signature
        raise SiweError("the signature is malformed") from exc
    address = Account.recover_message(message, signature=signature)
    return address, public_key.to_hex()


def _normalise(signature: str | bytes) -> bytes:
    raw = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else signature
    if len(raw) != 65:
        raise SiweError("a signature is 65 bytes")
    v = raw[64]
    return raw[:64] + bytes([v - 27 if v >= 27 else v])
