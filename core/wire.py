"""Wire protocol v1 between SDKs and the collector: header names, limits, keys and signatures.

Pure standard library, so an SDK, a test or a benchmark can sign batches exactly as the server checks them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Final

H_AUTH: Final = "authorization"
H_TIMESTAMP: Final = "x-tracewire-timestamp"
H_SIGNATURE: Final = "x-tracewire-signature"
H_BATCH_ID: Final = "x-tracewire-batch-id"
H_ATTEMPT: Final = "x-tracewire-attempt"

SIGNATURE_WINDOW_S: Final = 300
MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Defaults from the protocol; every one is a `tracewire serve` flag."""

    max_body_bytes: int = 10 * MIB  # as received (compressed when gzipped)
    max_inflated_bytes: int = 50 * MIB
    max_events: int = 10_000
    max_event_bytes: int = 1 * MIB
    signature_window_s: int = SIGNATURE_WINDOW_S


_KEY_RE = re.compile(r"^twk_([0-9a-f]{12})_([A-Za-z0-9_-]{32,})$")


@dataclass(frozen=True)
class NewKey:
    """A freshly minted key: `api_key` and `signing_secret` are shown once, never stored in clear
    (the signing secret is stored: it is an HMAC shared secret, like a webhook secret)."""

    key_id: str
    project: str
    api_key: str
    signing_secret: str

    @property
    def key_hash(self) -> str:
        return hash_key(self.api_key)


def new_key(project: str) -> NewKey:
    key_id = secrets.token_hex(6)
    return NewKey(key_id, project, f"twk_{key_id}_{secrets.token_urlsafe(32)}", f"tws_{secrets.token_urlsafe(32)}")


def parse_key_id(api_key: str) -> str | None:
    """The key id inside a well-formed API key, else None."""
    m = _KEY_RE.match(api_key)
    return m.group(1) if m else None


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Tracewire-Signature` value: v1=HMAC-SHA256(secret, "<timestamp>.<body as sent>")."""
    mac = hmac.new(signing_secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(signing_secret: str, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(signing_secret, timestamp, body).encode("ascii"), header.strip().encode("utf-8", "replace"))


def signed_headers(api_key: str, signing_secret: str, body: bytes, *, gzipped: bool = False,
                   batch_id: str | None = None, attempt: int = 1, timestamp: int | None = None) -> dict[str, str]:
    """Every header a `POST /v1/events` needs, for `body` exactly as it will be sent."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "X-Tracewire-Timestamp": str(ts),
        "X-Tracewire-Signature": sign(signing_secret, ts, body),
        "X-Tracewire-Batch-Id": batch_id or str(uuid.uuid4()),
        "X-Tracewire-Attempt": str(attempt),
    }
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return headers
