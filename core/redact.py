"""Secret scrubbing: by key name and by value shape. Shared by the pipeline and any adapter."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# A key is secret when its last word is one of these (`azure_password`, `x-api-key`,
# `client_secret`); `max_tokens` and `input_tokens` are not, `token` and `access_token` are.
_SECRET_KEY_WORDS = (
    r"api[_\-.]?key|apikey|x[_\-]api[_\-]key|authorization|proxy[_\-]authorization|password|passwd|pwd|"
    r"secret|client[_\-]secret|secret[_\-]access[_\-]key|access[_\-]key|private[_\-]key|"
    r"token|access[_\-]token|refresh[_\-]token|id[_\-]token|auth[_\-]token|session[_\-]token|bearer|"
    r"cookie|set[_\-]cookie|credentials?|signing[_\-]key|azure_ad_token"
)
_SECRET_VALUE = re.compile(
    r"(?:\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{12,})"  # OpenAI / Anthropic / Stripe style keys
    r"|(?:\b[Bb]earer\s+[A-Za-z0-9._~+/\-]{8,}=*)"  # Authorization header values
    r"|(?:\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"  # AWS access key ids
    r"|(?:\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"  # JWTs
    r"|(?:\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,})"  # GitHub tokens
    r"|(?:\bxox[abprs]-[A-Za-z0-9\-]{10,})"  # Slack tokens
    r"|(?:\bAIza[0-9A-Za-z_\-]{35})"  # Google API keys
)
# Cheap substring tests that must all miss before a string can be passed without the regex.
_VALUE_HINTS = ("sk-", "earer", "AKIA", "ASIA", "eyJ", "ghp_", "gho_", "ghs_", "ghu_", "github_pat", "xox", "AIza")


class Redactor:
    """Decides which keys and values are secret. One instance per client (extra keys vary)."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        words = _SECRET_KEY_WORDS + "".join("|" + re.escape(k) for k in extra_keys)
        self._key = re.compile(rf"(?:^|[_\-.\s])(?:{words})$", re.IGNORECASE)
        self._key_cache: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            hit = bool(self._key.search(key.strip()))
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = hit
        return hit

    @staticmethod
    def may_hold_secret(text: str) -> bool:
        return any(h in text for h in _VALUE_HINTS)

    @staticmethod
    def scrub_text(text: str) -> str:
        if not any(h in text for h in _VALUE_HINTS):
            return text
        return _SECRET_VALUE.sub(REDACTED, text)

    def text_may_name_secret_key(self, json_text: str) -> bool:
        """True if serialized JSON may hold a secret key (a cheap over-approximation)."""
        low = json_text.lower()
        return any(
            h in low
            for h in ('key"', "auth", "pass", "pwd", 'secret', 'token"', "cookie", "credential", "bearer")
        )
