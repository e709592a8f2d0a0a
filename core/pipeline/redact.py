"""Secret scrubbing: one rule for key names and value shapes.

The rule is written once, as the vocabularies and shapes below, and read two ways:
- `Redactor.is_secret_key` and `Redactor.scrub_text` scrub data (the pipeline's full walk);
- `Redactor.may_need_scrubbing` is a cheap check over serialized text (the worker's fast path,
  and the gate in front of `scrub_text`). It is built from the same tables so that it says True
  for every text in which the full rule would change something; tests check that they agree.

The user-facing summary of what counts as secret is docs/security.md ("What is scrubbed").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# What stands where a value could not be checked: privacy fails closed.
WITHHELD = "[WITHHELD: could not be checked for secrets]"

# -- key names -------------------------------------------------------------------------------
# A key is split into words (separators, camelCase, digits) and lower-cased: `accessToken`,
# `ACCESS_TOKEN`, `access-token`, `Access Token ` all read as `access token`.

# Found inside any separator-delimited part of a key: `dbPassword`, `sslpassword`, `clientSecret`.
KEY_STEMS = (
    "passw", "passphrase", "pwd", "secret", "credential", "cookie", "bearer", "signature",
    "authoriz", "apikey", "privatekey", "accesskey", "jwt",
)
# Whole words: any word `auth`/`oauth`, a word ending in `token`; `pass` as the last word.
AUTH_WORDS = frozenset({"auth", "oauth", "basicauth", "httpauth"})
# `<qualifier> key` is secret unless the qualifier says it is not a credential (`primary_key`).
BENIGN_KEY_QUALIFIERS = frozenset({
    "primary", "foreign", "sort", "partition", "cache", "idempotency", "dedup", "dedupe",
    "routing", "row", "hash", "range", "lookup", "map", "dict", "object", "bucket", "group",
    "shard", "public", "event", "message", "item", "attribute", "field", "column", "table",
    "index", "unique", "composite", "join", "order", "name", "label", "translation", "i18n",
    "config", "state", "list", "entry", "record", "query", "search", "resource", "prompt",
    "template", "tool", "memory", "document", "doc", "chunk", "node", "run", "trace", "span",
    "cursor", "page", "react", "element", "hot", "music", "metadata", "sorting", "grouping",
    "dictionary", "json", "yaml", "env", "environment", "context", "input", "output", "result",
})
# Qualifiers that make a glued `...key` / `...tokens` a credential (`openaikey`, `accessTokens`).
CREDENTIAL_QUALIFIERS = (
    "api", "access", "secret", "private", "signing", "subscription", "encryption", "master",
    "client", "service", "account", "license", "app", "ssh", "hmac", "sas", "storage", "admin",
    "webhook", "deploy", "auth", "session", "refresh", "id", "bearer", "personal", "bot", "user",
    "openai", "anthropic", "azure", "aws", "gcp", "google", "gemini", "cohere", "mistral", "groq",
    "huggingface", "hf", "pinecone", "tavily", "serper", "serpapi", "langsmith", "langfuse",
    "stripe", "github", "gitlab", "slack", "twilio", "sendgrid", "db", "database", "jwt", "csrf",
)
# A `token` word means a count when one of these is in the key (`max_tokens`, `token_count`).
QUANTITY_WORDS = frozenset({
    "max", "min", "total", "num", "number", "count", "counts", "usage", "limit", "limits",
    "budget", "remaining", "used", "input", "output", "prompt", "completion", "completions",
    "reasoning", "cached", "cache", "estimated", "estimate", "per", "ids", "logprobs",
    "length", "len", "size", "ratio",
})
# A key whose last word describes a credential rather than holding it (`token_type`,
# `auth_method`, `password_length`) is not secret.
DESCRIPTOR_WORDS = frozenset({
    "type", "types", "kind", "method", "methods", "mode", "scheme", "provider", "url", "uri",
    "endpoint", "enabled", "required", "present", "configured", "length", "len", "size", "count",
    "counts", "limit", "expiry", "expires", "expiration", "ttl", "policy", "format", "version",
    "name", "names", "path", "file", "env", "var", "rate", "rotation", "usage", "strength",
})
# Key names never scrubbed (word sequences, normalised like keys). Extend with `allow_keys`.
ALLOWED_KEYS = frozenset({
    "max_tokens", "max_completion_tokens", "max_output_tokens", "max_input_tokens", "max_new_tokens",
    "input_tokens", "output_tokens", "total_tokens", "prompt_tokens", "completion_tokens",
    "reasoning_tokens", "cached_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "token_count", "token_usage", "num_tokens", "tokens", "tokenizer", "key", "keys",
    "session_id", "user_id", "trace_id", "span_id",
})

# -- value shapes ----------------------------------------------------------------------------
# Provider token shapes whose body always holds 16 or more letters/digits in a row: the cheap
# check finds them by that run. Shapes whose body may not (base64url with `-`/`_` inside) carry
# a literal hint of their own in `_VALUE_HINTS` instead.
_RUN_TOKENS = (
    r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",  # AWS access key ids
    r"(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}",  # GitHub
    r"github_pat_[A-Za-z0-9]{16,}_?[A-Za-z0-9_]*",  # GitHub fine-grained
    r"xox[abposre]-(?:[0-9A-Za-z]{1,15}-){0,4}[0-9A-Za-z]{16,}[0-9A-Za-z\-]*",  # Slack
    r"xapp-[0-9]{1,3}-(?:[0-9A-Za-z]{1,15}-){0,4}[0-9A-Za-z]{16,}[0-9A-Za-z\-]*",  # Slack app-level
    r"[sr]k_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"gsk_[A-Za-z0-9]{40,}",  # Groq
    r"xai-[A-Za-z0-9]{40,}",  # xAI
    r"r8_[A-Za-z0-9]{30,}",  # Replicate
    r"pplx-[A-Za-z0-9]{40,}",  # Perplexity
    r"lsv2_(?:pt|sk)_[a-f0-9]{32}(?:_[a-f0-9]+)?",  # LangSmith
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
    r"do[por]_v1_[a-f0-9]{64}",  # DigitalOcean
    r"dapi[a-f0-9]{32}",  # Databricks
    r"eyJ[A-Za-z0-9]{13,}[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.?[A-Za-z0-9_\-]*",  # JWTs
)
_HINTED_TOKENS = (
    r"sk-[A-Za-z0-9_\-]{12,}",  # OpenAI sk-, sk-proj-, sk-svcacct-; Anthropic sk-ant-; others
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"AIza[0-9A-Za-z_\-]{30,}",  # Google API keys
    r"ya29\.[0-9A-Za-z_\-]{20,}",  # Google OAuth access tokens
    r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",  # SendGrid
)
# Each run token's literal start, lower-cased: the second half of the cheap check, looked for
# near each run (every shape above starts at most _PREFIX_REACH characters before its first run).
_PREFIX_REACH = 80
_RUN_TOKEN_PREFIXES = (
    "akia", "asia", "abia", "acca", "ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_", "xox", "xapp-",
    "k_live_", "k_test_", "hf_", "npm_", "gsk_", "xai-", "r8_", "pplx-", "lsv2_", "shp", "_v1_", "dapi", "eyj",
)
_TOKENS = re.compile("|".join(rf"(?:\b{p})" for p in (*_HINTED_TOKENS, *_RUN_TOKENS)))
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# scheme://user:PASSWORD@host: the password runs to the last `@` before the host.
_URL_PASSWORD = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"']*:)(?P<pw>[^\s/\"']+)@(?=[^\s@/\"']+)")
_BEARER = re.compile(r"(?i)\b(?P<pre>bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")
_BASIC = re.compile(r"(?i)\b(?P<pre>basic\s+)(?P<cred>[A-Za-z0-9+/]{6,}={0,2})")
# A header line whose whole value is a credential (`Cookie: a=1; b=2` keeps nothing).
_HEADER_LINE = re.compile(
    r"(?im)(?P<pre>^[ \t]*(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key|api-key)[ \t]*:[ \t]*)[^\r\n]+"
)
# `key=value`, `key: value`, `"key": "value"`, `'key': 'value'` (query strings, libpq DSNs,
# dict reprs in exception messages, env dumps): the value goes when the key is secret.
# The value is looked ahead at, not consumed: it may itself be the key of the next pair
# (`Error: password=…`, `RefreshError: password = …`), so every key gets its turn.
_PAIR = re.compile(
    r"""(?P<k>"[^"\n]{1,64}"|'[^'\n]{1,64}'|[A-Za-z_][A-Za-z0-9_.\-]{0,63})"""
    r"""[ \t]*[:=][ \t]*"""
    r"""(?=(?P<v>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|(?:(?:basic|bearer|digest|token)[ \t]+)?[^\s,;&"'<>{}\[\]()]+))""",
    re.IGNORECASE,
)

# Literal hints (lower case): each value shape without a guaranteed run needs one of these.
_VALUE_HINTS = ("-----begin", "://", "basic", "bearer", "sk-", "glpat-", "aiza", "ya29.", "sg.")
# The cheap check's gates: characters from rarest to commonest in JSON text. A hint is looked for
# only in a text that holds its rarest character (a one-character `in` is a memchr, several times
# cheaper than a substring search): most texts hold none of `z j 9 / k - w b`. A hint always holds
# its gate, so no hint is missed; one made only of common letters (`secret`) is looked for always.
_GATE_ORDER = "zjqx9/k-wvbyg87654321fpcmdhul.0_rsnoiate"
# Key-name hints: every secret key name holds one of these (lower-cased) as a substring.
_KEY_HINTS = ("pass", "pwd", "secret", "credential", "cookie", "bearer", "signature", "auth", "key",
              "jwt", "token")
# Bytes, not str: bytes.translate is a C table lookup, str.translate a dict lookup per character.
_RUN_TABLE = bytes(ord("a") if chr(b).isascii() and chr(b).isalnum() else ord(".") for b in range(256))
_RUN = b"a" * 16

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+|[^\x00-\x7f]+")
_PIECES = re.compile(r"[^0-9a-z]+")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def key_words(key: str) -> list[str]:
    """A key's words, lower-cased: `OpenAI-APIKey ` -> ['open', 'ai', 'api', 'key']."""
    return [w.lower() for piece in re.split(r"[^0-9A-Za-z\x80-\U0010ffff]+", key) for w in _CAMEL.findall(piece)]


def _normal(key: str) -> str:
    return "_".join(key_words(key))


def _trie(words: list[str]) -> str:
    """A regex matching any of `words`, as nested alternatives on shared first letters. A word
    that is a prefix of another is matched on its own (the shorter hint already decides)."""
    groups: dict[str, list[str]] = {}
    for w in words:
        groups.setdefault(w[0], []).append(w[1:])
    parts = []
    for first, rests in groups.items():
        if "" in rests:
            parts.append(re.escape(first))
        elif len(rests) == 1:
            parts.append(re.escape(first + rests[0]))
        else:
            parts.append(f"{re.escape(first)}(?:{_trie(rests)})")
    return "|".join(parts)


_RUN_PREFIX = re.compile(_trie(sorted(_RUN_TOKEN_PREFIXES)).encode())


def _gate_rank(gate: str) -> int:
    i = _GATE_ORDER.find(gate)
    return len(_GATE_ORDER) if i < 0 else i


def _ends_with_qualifier(text: str) -> bool:
    return text.endswith(CREDENTIAL_QUALIFIERS)


class Redactor:
    """Decides which keys and values are secret. One instance per client (extra and allowed keys vary)."""

    def __init__(self, extra_keys: Iterable[str] = (), allow_keys: Iterable[str] = ()) -> None:
        self._extra = tuple(tuple(key_words(k)) for k in extra_keys if key_words(k))
        self._allowed = ALLOWED_KEYS | {_normal(k) for k in allow_keys}
        hints = {*_VALUE_HINTS, *_KEY_HINTS, *(words[0] for words in self._extra)}
        # Each hint under its gate (see `_GATE_ORDER`): a C substring search per hint costs less
        # than one regex pass over all of them (which tries a match at most characters).
        gated: dict[str, list[str]] = {}
        for hint in sorted(hints):
            gate = next((c for c in _GATE_ORDER if c in hint), hint[0])
            gated.setdefault(gate, []).append(hint)
        self._gated = tuple((gate, tuple(hs)) for gate, hs in sorted(gated.items(), key=lambda g: _gate_rank(g[0])))
        self._key_cache: dict[str, bool] = {}

    # -- keys
    def is_secret_key(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            hit = self._classify(key)
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = hit
        return hit

    def _classify(self, key: str) -> bool:
        words = key_words(key)
        if not words:
            return False
        if "_".join(words) in self._allowed:
            return False
        for extra in self._extra:
            n = len(extra)
            if any(tuple(words[i:i + n]) == extra for i in range(len(words) - n + 1)):
                return True
        if words[-1] in DESCRIPTOR_WORDS:
            return False
        pieces = [p for p in _PIECES.split(key.lower()) if p]
        if any(stem in piece for piece in pieces for stem in KEY_STEMS):
            return True
        if words[-1] == "pass":
            return True
        counted = any(w in QUANTITY_WORDS for w in words)
        if not counted and any(_token_is_secret(piece, pieces[i - 1] if i else "") for i, piece in enumerate(pieces)):
            return True
        for i, w in enumerate(words):
            if w in AUTH_WORDS:
                return True
            if w in ("key", "keys") and i and words[i - 1] not in BENIGN_KEY_QUALIFIERS:
                return True
            stem = w[:-4] if w.endswith("keys") else w[:-3] if w.endswith("key") else ""
            if stem and _ends_with_qualifier(stem):
                return True
        return False

    # -- the cheap check
    def may_need_scrubbing(self, text: str, runs_in: str | None = None) -> bool:
        """False only if `scrub_text` would leave `text` (and every string and key in it, when it
        is serialized JSON) unchanged and no key in it is secret. Over-approximates.
        `runs_in`: the part of `text` where a token's letters-and-digits run can be (the caller
        leaves out generated ids and timestamps, which are such runs and never tokens)."""
        t = text.lower()
        for gate, hints in self._gated:
            if gate in t:
                for hint in hints:
                    if hint == "token":  # a count (`input_tokens`) is no hint: each one is read
                        i = t.find("token")
                        while i >= 0:
                            if _token_hint(t, i) and not _counted_token(text, t, i):
                                return True
                            i = t.find("token", i + 1)
                    elif hint in t:
                        return True
        raw = (text if runs_in is None else runs_in).encode("utf-8", "surrogatepass")
        marks = raw.translate(_RUN_TABLE)
        i = marks.find(_RUN)
        if i < 0:
            return False
        low = raw.lower()
        while i >= 0:  # each run: a token prefix within reach before it?
            if _RUN_PREFIX.search(low, max(0, i - _PREFIX_REACH), i + 20):
                return True
            end = marks.find(b".", i)
            if end < 0:
                return False
            i = marks.find(_RUN, end)
        return False

    # -- values
    def scrub_text(self, text: str) -> str:
        if not self.may_need_scrubbing(text):
            return text
        out = _PEM.sub(REDACTED, text)
        out = _HEADER_LINE.sub(lambda m: m["pre"] + REDACTED, out)
        out = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{REDACTED}@", out)
        out = self._pairs(out)
        out = _BEARER.sub(lambda m: m["pre"] + REDACTED, out)
        out = _BASIC.sub(_basic, out)
        return _TOKENS.sub(REDACTED, out)

    def _pairs(self, text: str) -> str:
        spans: list[tuple[int, int]] = []
        for m in _PAIR.finditer(text):
            value = m["v"]
            if value == REDACTED or not self.is_secret_key(m["k"].strip("\"'")):
                continue
            quoted = value[:1] in ("'", '"') and len(value) > 1
            start, end = m.start("v") + quoted, m.end("v") - quoted
            if spans and start <= spans[-1][1]:  # overlaps the last one: one redaction for both
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        if not spans:
            return text
        parts: list[str] = []
        pos = 0
        for start, end in spans:
            parts += (text[pos:start], REDACTED)
            pos = end
        parts.append(text[pos:])
        return "".join(parts)


def _basic(m: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(m["cred"] + "=" * (-len(m["cred"]) % 4), validate=True)
    except (binascii.Error, ValueError):
        return m[0]
    return m["pre"] + REDACTED if b":" in decoded else m[0]


def _token_is_secret(piece: str, prev: str) -> bool:
    """The `token` part of the key rule, on one lower-cased, separator-free part of a key: a
    `token` that ends a word (`token`, `accesstoken`, `accessTokenValue`), or a plural `tokens`
    glued to or following a credential qualifier (`refresh_tokens`). `tokenizer` is not."""
    i = piece.find("token")
    while i >= 0:
        rest = piece[i + 5:]
        if rest == "s":
            if _ends_with_qualifier(piece[:i] or prev):
                return True
        elif not rest.startswith(("iz", "is")):
            return True
        i = piece.find("token", i + 5)
    return False


_KEY_RUN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _counted_token(text: str, t: str, i: int) -> bool:
    """The key rule's quantity exception, read off the text: the `token` at `i` sits in a run of
    key characters that names a quantity (`input_token_details`, `promptTokenCount`), so any key
    holding it is a count. False wherever that cannot be read safely (non-ASCII text, whose
    lower-casing may move offsets; a run after an escape; a run longer than a pair's key)."""
    if len(t) != len(text) or not text.isascii():
        return False
    j, k = i, i + 5
    while j > 0 and text[j - 1] in _KEY_RUN_CHARS:
        j -= 1
    while k < len(text) and text[k] in _KEY_RUN_CHARS:
        k += 1
    if k - j > 64 or (j > 0 and text[j - 1] == "\\"):
        return False
    return any(w in QUANTITY_WORDS for w in key_words(text[j:k]))


# `.input_tokens`, `"output_tokens`, `_total_tokens` and their kin (the usage counts every LLM
# event carries): for each, `_token_hint`'s walk stops at the separator and reads a word that ends
# with no qualifier (checked here, once), so these endings answer for it.
_USAGE_TOKEN_WORDS = tuple(
    f"{sep}{word}_" for word in ("input", "output", "total", "prompt", "completion", "reasoning", "cached", "max")
    for sep in '."_' if not _ends_with_qualifier(word)
)


def _token_hint(t: str, i: int) -> bool:
    """The cheap check's reading of a `token` at `t[i:]` (lower-cased text): True wherever
    `_token_is_secret` could be (a `token` not followed by `s`, a `tokens` glued on or after a
    qualifier), so the usage counts every LLM event carries (`"input_tokens":`) do not send it
    down the full walk."""
    if t[i + 5:i + 6] != "s" or t[i + 6:i + 7] in _WORD_CHARS:  # `tokenscope` may read as `token scope`
        return True
    if t.endswith(_USAGE_TOKEN_WORDS, 0, i):  # `.input_tokens"`: what the walk below finds, in one C call
        return False
    j = i
    while j > 0 and t[j - 1] in _WORD_CHARS:
        j -= 1
    before = t[j:i]
    if before and j > 0 and t[j - 1] == "\\":  # an escape in serialized text: `\n`, `\u0001`
        return True
    if not before:  # `access_tokens`: the word before the separators
        k = j
        while k > 0 and t[k - 1] not in _WORD_CHARS:
            k -= 1
        m = k
        while m > 0 and t[m - 1] in _WORD_CHARS:
            m -= 1
        if m > 0 and t[m - 1] == "\\":  # that word is an escape (`\u001f{tokens`): the key's word is unknown
            return True
        before = t[m:k]
    return _ends_with_qualifier(before)
