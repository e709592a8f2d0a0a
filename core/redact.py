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


class Redactor:
    """Decides which keys and values are secret. One instance per client (extra keys vary)."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        words = _SECRET_KEY_WORDS + "".join("|" + re.escape(k) for k in extra_keys)
        self._key = re.compile(rf"(?:^|[_\-.\s])(?:{words})$", re.IGNORECASE)
        self._key_cache: dict[str, bool] = {}
        self._extra = tuple(f'{k.lower()}"' for k in extra_keys)

    def is_secret_key(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            hit = bool(self._key.search(key.strip()))
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = hit
        return hit

    @staticmethod
    def may_hold_secret(t: str) -> bool:
        # an unrolled chain of substring tests: several times cheaper than a regex or any() here
        return (
            "sk-" in t or "earer" in t or "AKIA" in t or "ASIA" in t or "eyJ" in t or "ghp_" in t
            or "gho_" in t or "ghs_" in t or "ghu_" in t or "github_pat" in t or "xox" in t or "AIza" in t
        )

    @classmethod
    def scrub_text(cls, text: str) -> str:
        if not cls.may_hold_secret(text):
            return text
        return _SECRET_VALUE.sub(REDACTED, text)

    def json_may_need_scrubbing(self, json_text: str) -> bool:
        """`may_hold_secret(t) or text_may_name_secret_key(t)` in one lower-cased pass, for a whole
        serialized event: broader (case-blind value hints), and a fifth cheaper than the two."""
        t = json_text.lower()
        return (
            "sk-" in t or "akia" in t or "asia" in t or "eyj" in t or "xox" in t or "aiza" in t
            or "github_pat" in t or ("gh" in t and ("ghp_" in t or "gho_" in t or "ghs_" in t or "ghu_" in t))
            or self._names_secret_key(t)  # its "bearer" covers the header values
        )

    def text_may_name_secret_key(self, json_text: str) -> bool:
        """True if serialized JSON may hold a secret key (a cheap over-approximation)."""
        return self._names_secret_key(json_text.lower())

    def _names_secret_key(self, t: str) -> bool:
        if (
            'key"' in t or "auth" in t or "pass" in t or "pwd" in t or "secret" in t or 'token"' in t
            or "cookie" in t or "credential" in t or "bearer" in t
        ):
            return True
        for k in self._extra:
            if k in t:
                return True
        return False
