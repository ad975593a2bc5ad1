"""Stream tokens: short-lived signed stand-ins for a key, for browsers' EventSource.

EventSource cannot send headers, and a key in a URL ends up in logs and histories. So a client
holding a key asks `POST /v1/stream/tokens` for a token (`st_<key id>.<expiry>.<signature>`)
good for TTL seconds and only as `?token=` on GET /v1/stream/*; it acts with its key's scopes,
rate and origins. The signature is an HMAC (a key derived from settings.secret) over the key
id, the expiry and the key's stored secret hash, so every use looks the key up: a revoked or
expired key's tokens stop working at once, a rotated key's at its rotation. A stream opened
with a valid token runs on; reconnecting needs a token that is still valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

TTL = 300  # seconds
PREFIX = "st_"
_SHAPE = re.compile(r"st_([a-z0-9]{12})\.([0-9]{1,12})\.([A-Za-z0-9_-]{27})")
STREAM_PREFIX = "/v1/stream/"
ISSUE_PATH = "/v1/stream/tokens"


def _signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"sitrep stream tokens v1", hashlib.sha256).digest()


def _signature(secret: str, key_id: str, expires: int, secret_hash: bytes) -> str:
    mac = hmac.new(_signing_key(secret), f"{key_id}.{expires}.".encode() + secret_hash, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:20]).rstrip(b"=").decode()


def issue(secret: str, key_id: str, secret_hash: bytes, expires: int) -> str:
    return f"{PREFIX}{key_id}.{expires}.{_signature(secret, key_id, expires, secret_hash)}"


def parse(token: str) -> tuple[str, int, str] | None:
    """(key id, expiry as a Unix time, signature) of a well-formed token, else None."""
    match = _SHAPE.fullmatch(token)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def signed(secret: str, key_id: str, expires: int, signature: str, secret_hash: bytes) -> bool:
    return hmac.compare_digest(_signature(secret, key_id, expires, secret_hash), signature)


def accepted_on(method: str, path: str) -> bool:
    """Where `?token=` counts as a credential: reading a stream, nothing else."""
    return method in ("GET", "HEAD") and path.startswith(STREAM_PREFIX) and path != ISSUE_PATH
