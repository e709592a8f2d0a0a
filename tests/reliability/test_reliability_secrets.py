"""Property: a secret the app hands tracewire never reaches stored bytes.

Hypothesis builds nested payloads (dicts and lists, up to 4 levels) whose keys are secret names in
every spelling (`db_password`, `DB_PASSWORD`, `dbPassword`, `Db-Password`, ` db.password `, ...)
and whose text embeds secret shapes (provider tokens, JWTs, PEM private keys, URL passwords,
`Authorization: Bearer/Basic`, `key=value` pairs in prose, dict reprs in an exception message).
The same secrets go into a span name, a tag, an exception raised inside `tracewire.span(...)` and
a dict key that is itself a token. Every secret carries a distinctive random part; the test keeps
the exact secret substrings ("needles") and searches for them, with plain `bytes.find`, in:

(a) the SQLite sink's files (main db and -wal), (b) the JSONL sink's file, (c) the `http` sink's
spool directory while its collector is unreachable (nothing leaves the spool), and (d) the store
of a real collector (`tracewire serve`, SQLite) after the SDK flushed to it.

Allow-listed keys (`max_tokens`, `input_tokens`, `token_count`, and a user `allow_keys` entry)
must keep their values, `[REDACTED]` must be there, and `stats()` must balance.

The last tests pin, as fixed inputs, the leaks the properties found (a secret pair after a label,
an error message that starts with one, a cut stack trace, a span kind). Examples per property:
TRACEWIRE_TEST_SECRET_EXAMPLES (default 30).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rel_harness import Collector, free_port

import tracewire
from tracewire.engine.stats import balanced

RUN = os.urandom(8).hex()  # salts differ between runs, never within one (examples replay the same)
ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
USER_ALLOW_KEY = "secret_santa"  # secret by its name (`secret`), kept because the user allows it
MAX_DEPTH = 4
EXAMPLES = int(os.environ.get("TRACEWIRE_TEST_SECRET_EXAMPLES", "30"))


def _expand(seed: str, alphabet: str, n: int) -> str:
    """`n` characters of `alphabet`, pseudo-random from `seed`: high-entropy, distinctive bodies."""
    out: list[str] = []
    counter = 0
    while len(out) < n:
        digest = hashlib.sha256(f"{RUN}:{seed}:{counter}".encode()).digest()
        out.extend(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return "".join(out[:n])


@st.composite
def _salt(draw: st.DrawFn, alphabet: str = ALNUM, min_size: int = 16, max_size: int = 16, ns: str = "s") -> str:
    n = draw(st.integers(min_size, max_size))
    return _expand(f"{ns}:{draw(st.integers(0, 2**40))}", alphabet, n)


@dataclass
class Secret:
    text: str  # what is embedded
    needles: list[str]  # exact secret substrings that must not be stored


# ------------------------------------------------------------------ secret key names
PHRASES: tuple[tuple[str, ...], ...] = (
    ("password",), ("passwd",), ("pwd",), ("passphrase",), ("secret",), ("client", "secret"),
    ("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("access", "token"),
    ("refresh", "token"), ("auth", "token"), ("session", "token"), ("id", "token"), ("token",),
    ("auth",), ("authorization",), ("cookie",), ("credentials",), ("subscription", "key"),
    ("signing", "key"), ("signature",), ("openai", "key"), ("openai", "api", "key"),
    ("anthropic", "api", "key"), ("aws", "secret", "access", "key"), ("github", "token"),
    ("bearer", "token"), ("x", "api", "key"), ("ocp", "apim", "subscription", "key"), ("master", "key"),
    ("webhook", "secret"), ("proxy", "authorization"), ("set", "cookie"), ("jwt",),
)
PREFIXES: tuple[tuple[str, ...], ...] = (
    (), (), ("db",), ("my",), ("x",), ("azure",), ("prod",), ("smtp",), ("app",), ("service",),
    ("stripe",), ("default",), ("backup",), ("legacy",), ("tenant",), ("admin",), ("the", "new"),
)
SUFFIXES: tuple[tuple[str, ...], ...] = ((), (), (), ("value",), ("2",), ("b64",), ("raw",), ("old",))
STYLES = ("snake", "screaming", "camel", "pascal", "kebab", "train", "dotted", "spaced", "title")
NO_SPACE_STYLES = ("snake", "screaming", "camel", "pascal", "kebab", "train", "dotted")


def render(words: tuple[str, ...], style: str) -> str:
    if style == "snake":
        return "_".join(words)
    if style == "screaming":
        return "_".join(words).upper()
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    if style == "train":
        return "-".join(w.capitalize() for w in words)
    if style == "dotted":
        return ".".join(words)
    if style == "spaced":
        return " ".join(words)
    return " ".join(w.capitalize() for w in words)  # title


@st.composite
def secret_key_names(draw: st.DrawFn, styles: tuple[str, ...] = STYLES, padded: bool = True) -> str:
    words = draw(st.sampled_from(PREFIXES)) + draw(st.sampled_from(PHRASES)) + draw(st.sampled_from(SUFFIXES))
    name = render(words, draw(st.sampled_from(styles)))
    if padded and draw(st.booleans()):
        name = draw(st.sampled_from(("", " ", "  ", "\t"))) + name + draw(st.sampled_from(("", " ", "\n")))
    return name


# ------------------------------------------------------------------ secret value shapes
@st.composite
def openai_keys(draw: st.DrawFn) -> Secret:
    kind = draw(st.sampled_from(("", "proj-", "svcacct-", "admin-")))
    body = draw(_salt(B64URL, 20, 48)) + draw(_salt(ALNUM, 16, 20))
    tok = f"sk-{kind}{body}"
    return Secret(tok, [tok])


@st.composite
def prefixed_tokens(draw: st.DrawFn, prefix: str, alphabet: str, size: int, suffix: str = "") -> Secret:
    tok = prefix + draw(_salt(alphabet, size, size)) + suffix
    return Secret(tok, [tok])


@st.composite
def github_tokens(draw: st.DrawFn) -> Secret:
    if draw(st.booleans()):
        tok = draw(st.sampled_from(("ghp", "gho", "ghs", "ghu", "ghr"))) + "_" + draw(_salt(ALNUM, 36, 36))
    else:
        tok = "github_pat_" + draw(_salt(ALNUM, 22, 22)) + "_" + draw(_salt(ALNUM, 59, 59))
    return Secret(tok, [tok])


@st.composite
def slack_tokens(draw: st.DrawFn) -> Secret:
    tok = (draw(st.sampled_from(("xoxb", "xoxp", "xoxa"))) + "-" + draw(_salt(string.digits, 10, 13)) + "-"
           + draw(_salt(string.digits, 10, 13)) + "-" + draw(_salt(ALNUM, 24, 24)))
    return Secret(tok, [tok])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jwts(draw: st.DrawFn) -> Secret:
    header: dict[str, Any] = {"alg": draw(st.sampled_from(("HS256", "RS256", "ES256", "EdDSA")))}
    if draw(st.booleans()):
        header["typ"] = "JWT"
    if draw(st.booleans()):
        header["kid"] = draw(_salt(string.hexdigits.lower(), 8, 16))
    payload = {"sub": draw(_salt()), "iat": draw(st.integers(1_500_000_000, 1_900_000_000)),
               "scope": draw(st.sampled_from(("read", "read write", "admin")))}
    sep = draw(st.sampled_from(((",", ":"), (", ", ": "))))
    h = _b64url(json.dumps(header, separators=sep).encode())
    p = _b64url(json.dumps(payload, separators=sep).encode())
    s = _b64url(hashlib.sha256(f"{RUN}:{p}".encode()).digest() * draw(st.sampled_from((1, 2))))
    return Secret(f"{h}.{p}.{s}", [p, s])


PEM_KINDS = ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
             "DSA PRIVATE KEY")


@st.composite
def pem_keys(draw: st.DrawFn) -> Secret:
    kind = draw(st.sampled_from(PEM_KINDS))
    nl = draw(st.sampled_from(("\n", "\r\n")))
    salt = draw(_salt())
    raw = b"".join(hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(draw(st.integers(2, 20))))
    body = base64.b64encode(raw).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    text = f"-----BEGIN {kind}-----{nl}" + nl.join(lines) + f"{nl}-----END {kind}-----"
    return Secret(text, [line for line in lines if len(line) >= 16])


@st.composite
def url_passwords(draw: st.DrawFn) -> Secret:
    scheme = draw(st.sampled_from(("postgresql", "postgres", "mysql", "mongodb+srv", "redis", "amqp", "https",
                                   "ftp", "postgresql+psycopg")))
    user = draw(st.sampled_from(("admin", "app", "postgres", "svc_user", "bob.smith")))
    specials = draw(st.lists(st.sampled_from("@!$%^*-_.~+=:"), max_size=3))
    pw = draw(_salt(ALNUM, 16, 24))
    for i, c in enumerate(specials):
        cut = (i * 7 + 3) % len(pw)
        pw = pw[:cut] + c + pw[cut:]
    host = draw(st.sampled_from(("db.internal", "127.0.0.1:5432", "cluster0.ab12c.mongodb.net", "cache:6379",
                                 "[::1]:5672")))
    tail = draw(st.sampled_from(("", "/app", "/app?sslmode=require", "/0", "/")))
    return Secret(f"{scheme}://{user}:{pw}@{host}{tail}", [pw])


@st.composite
def bearer_headers(draw: st.DrawFn) -> Secret:
    tok = draw(_salt(ALNUM + "._~+/-", 16, 60)) + draw(_salt(ALNUM, 16, 16)) + draw(st.sampled_from(("", "=", "==")))
    form = draw(st.sampled_from(("Authorization: Bearer {}", "authorization: bearer {}", "Bearer {}",
                                 '-H "Authorization: Bearer {}"', "Proxy-Authorization: Bearer {}")))
    return Secret(form.format(tok), [tok])


@st.composite
def basic_headers(draw: st.DrawFn) -> Secret:
    cred = base64.b64encode(f"{draw(st.sampled_from(('admin', 'bob', 'svc')))}:{draw(_salt())}".encode()).decode()
    form = draw(st.sampled_from(("Authorization: Basic {}", "authorization: basic {}", "Basic {}",
                                 "Proxy-Authorization: Basic {}")))
    return Secret(form.format(cred), [cred])


@st.composite
def pair_values(draw: st.DrawFn) -> str:
    v = draw(_salt(ALNUM, 16, 24))
    for i, c in enumerate(draw(st.lists(st.sampled_from("!@#$%^*-_.~+=/:|?"), max_size=3))):
        cut = (i * 5 + 2) % len(v)
        v = v[:cut] + c + v[cut:]
    return v


@st.composite
def pairs(draw: st.DrawFn) -> Secret:
    """`key=value`, `key: value`, `"key": "value"`, `key="va lue"` as in logs, DSNs and env dumps."""
    form = draw(st.sampled_from(("bare", "bare", "quoted_value", "json", "single", "aws")))
    if form == "aws":
        v = draw(_salt(ALNUM + "/+", 40, 40))
        key = draw(st.sampled_from(("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretAccessKey")))
        return Secret(f"{key}{draw(st.sampled_from(('=', ' = ', ': ')))}{v}", [v])
    if form == "bare":
        key = draw(secret_key_names(NO_SPACE_STYLES, padded=False))
        v = draw(pair_values())
        return Secret(f"{key}{draw(st.sampled_from(('=', ' = ', ': ', ':')))}{v}", [v])
    v = draw(pair_values()) + draw(st.sampled_from(("", " and more", " with spaces")))
    if form == "quoted_value":
        key = draw(secret_key_names(NO_SPACE_STYLES, padded=False))
        return Secret(f'{key}="{v}"', [v])
    key = draw(secret_key_names(padded=False))
    if form == "json":
        return Secret(json.dumps({key: v}), [v])
    return Secret(f"'{key}': '{v}'", [v])


@st.composite
def dict_reprs(draw: st.DrawFn) -> Secret:
    """A Python dict repr, as an exception message quotes the request or config it failed on."""
    key = draw(secret_key_names(padded=False))
    v = draw(pair_values())
    d = {"model": "gpt-4o", key: v, "max_tokens": 256}
    lead = draw(st.sampled_from(("Invalid request", "bad config", "ValidationError for", "kwargs were")))
    return Secret(f"{lead}: {d!r}", [v])


TOKEN_SHAPES = st.one_of(
    openai_keys(),
    st.integers(40, 93).flatmap(lambda n: prefixed_tokens("sk-ant-api03-", B64URL, n, "AA")),
    prefixed_tokens("AIza", B64URL, 35),
    github_tokens(),
    prefixed_tokens("glpat-", B64URL, 20),
    slack_tokens(),
    st.sampled_from(("AKIA", "ASIA")).flatmap(lambda p: prefixed_tokens(p, UPPER_ALNUM, 16)),
    jwts(),
)
EMBEDDED_SHAPES = st.one_of(TOKEN_SHAPES, pem_keys(), url_passwords(), bearer_headers(), basic_headers(), pairs(),
                            dict_reprs())

LEADS = ("", "calling the API with", "connection failed:", "debug dump", "user said", "retrying after error",
         "config loaded", "Traceback note", "see", "the value is", "env", "Error:")
JOINERS = (" ", "\n", ": ", " (", "\t", " -> ", "\n\n")
TRAILS = ("", " ", ".", ",", ")", "\n", " and then it stopped", ";")


@st.composite
def prose(draw: st.DrawFn) -> Secret:
    """Text with 1-3 secrets inside, as logs, prompts and error messages carry them."""
    parts: list[str] = []
    needles: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        s = draw(EMBEDDED_SHAPES)
        lead = draw(st.sampled_from(LEADS))
        parts.append((lead + draw(st.sampled_from(JOINERS)) if lead else "") + s.text + draw(st.sampled_from(TRAILS)))
        needles += s.needles
    return Secret(draw(st.sampled_from((" ", "\n"))).join(parts), needles)


# ------------------------------------------------------------------ payload trees
BENIGN_KEYS = ("note", "content", "message", "text", "prompt", "description", "log", "details", "query", "body",
               "result", "stderr")


@dataclass
class Tree:
    value: Any
    needles: list[str] = field(default_factory=list)


@st.composite
def secret_values(draw: st.DrawFn) -> Tree:
    """What sits under a secret key name: replaced whole, whatever it is."""
    salt = draw(_salt(ns="v"))
    kind = draw(st.sampled_from(("text", "text", "shape", "int", "list", "dict")))
    if kind == "text":
        v = draw(st.sampled_from(("{}", "hunter2-{}", "{} with spaces", "p@ss:{}", "'{}'", "{}\nline two")))
        return Tree(v.format(salt), [salt])
    if kind == "shape":
        s = draw(TOKEN_SHAPES)
        return Tree(s.text, s.needles)
    if kind == "int":
        n = int(_expand(salt, string.digits, 17)) + 10**17
        return Tree(n, [str(n)])
    if kind == "list":
        return Tree([salt, {"inner": salt + "x"}], [salt])
    return Tree({"value": salt, "expires_in": 3600}, [salt])


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> Tree:
    nest = depth < MAX_DEPTH
    choices = ["secret_key", "secret_key", "text", "token_key"] + (["dict", "list"] if nest else [])
    out: dict[str, Any] = {}
    needles: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(choices))
        if what == "secret_key":
            sv = draw(secret_values())
            out[draw(secret_key_names())] = sv.value
            needles += sv.needles
        elif what == "text":
            s = draw(prose())
            out[draw(st.sampled_from(BENIGN_KEYS))] = s.text
            needles += s.needles
        elif what == "token_key":  # a dict key that is itself a token
            s = draw(TOKEN_SHAPES)
            out[s.text] = draw(st.sampled_from(("registered", 1, None, ["a", "b"])))
            needles += s.needles
        elif what == "dict":
            sub = draw(trees(depth + 1))
            out[draw(st.sampled_from(BENIGN_KEYS))] = sub.value
            needles += sub.needles
        else:
            items: list[Any] = []
            for _ in range(draw(st.integers(1, 3))):
                if draw(st.booleans()):
                    s = draw(prose())
                    items.append(s.text)
                    needles += s.needles
                else:
                    sub = draw(trees(depth + 1))
                    items.append(sub.value)
                    needles += sub.needles
            out[draw(st.sampled_from(BENIGN_KEYS))] = items
    return Tree(out, needles)


# ------------------------------------------------------------------ one planted example
@dataclass
class Plant:
    input: dict[str, Any]
    output: Any
    metadata: dict[str, Any]
    attributes: dict[str, Any]
    span_name: str
    tag: str
    error_message: str
    error_type: tuple[str, str]  # (module, name) of the exception class raised
    needles: list[str]
    kept: list[str]  # serialized `"key":value` fragments that must be stored as they are


def _kept_fragment(key: str, value: Any) -> str:
    return json.dumps({key: value}, separators=(",", ":"), ensure_ascii=False)[1:-1]


@st.composite
def plants(draw: st.DrawFn) -> Plant:
    needles: list[str] = []

    def take(t: Tree | Secret) -> Any:
        needles.extend(t.needles)
        return t.value if isinstance(t, Tree) else t.text

    payload = take(draw(trees()))
    # allow-listed keys beside the secrets, in any spelling, keep their values
    kept: list[str] = []
    allowed: dict[str, Any] = {}
    for words, value in (
        (("max", "tokens"), draw(st.integers(1, 200_000))),
        (("input", "tokens"), draw(st.integers(1, 200_000))),
        (("token", "count"), draw(st.integers(1, 200_000))),
        (tuple(USER_ALLOW_KEY.split("_")), "keep-" + draw(_salt(ns="keep"))),
    ):
        key = render(words, draw(st.sampled_from(STYLES)))
        allowed[key] = value
        kept.append(_kept_fragment(key, value))
    payload.update(allowed)
    output = {"choices": [{"text": take(draw(prose()))}], "usage": {"max_tokens": allowed[next(iter(allowed))]}}
    metadata = {"env": take(draw(trees(MAX_DEPTH - 1)))}
    attributes = take(draw(trees(MAX_DEPTH - 2)))
    attributes.update(allowed)
    name_secret = draw(st.one_of(TOKEN_SHAPES, url_passwords(), pairs()))
    span_name = "fetch " + take(name_secret)
    tag = "deploy " + take(draw(st.one_of(TOKEN_SHAPES, url_passwords(), pairs(), bearer_headers())))
    error = draw(prose())
    error_message = take(error) + " | " + take(draw(dict_reprs()))
    error_type = draw(st.sampled_from(ERROR_TYPES))
    return Plant(payload, output, metadata, attributes, span_name, tag, error_message, error_type, needles, kept)


# The exception classes raised: their `module.Name` heads the last line of the stack trace. Some
# read as secret key names themselves, as real ones do (`auth`, `credential`, `signature`, `token`).
ERROR_TYPES = (
    ("builtins", "ValueError"), ("app.errors", "UpstreamError"), ("httpx", "HTTPStatusError"),
    ("google.auth.exceptions", "RefreshError"), ("botocore.exceptions", "NoCredentialsError"),
    ("jwt.exceptions", "InvalidSignatureError"), ("oauthlib.oauth2.rfc6749.errors", "TokenExpiredError"),
)
_ERROR_CLASSES: dict[tuple[str, str], type[Exception]] = {}


def error_class(module: str, name: str) -> type[Exception]:
    cls = _ERROR_CLASSES.get((module, name))
    if cls is None:
        cls = _ERROR_CLASSES[(module, name)] = type(name, (RuntimeError,), {"__module__": module})
    return cls


def record(plant: Plant) -> str:
    """Records the plant on the current client through spans, a point event and a failing span."""
    error = error_class(*plant.error_type)
    with tracewire.span("agent", plant.span_name, input=plant.input, tags=[plant.tag], metadata=plant.metadata,
                        attributes=plant.attributes) as root:
        tracewire.record("log", name=plant.span_name, input=plant.input, output=plant.output, tags=[plant.tag],
                         attributes=plant.attributes, metadata=plant.metadata)
        try:
            with tracewire.span("tool", plant.span_name, input={"args": plant.input}, tags=[plant.tag]):
                raise error(plant.error_message)
        except error:
            pass
        tracewire.record("log", name="failed", error=error(plant.error_message))
        root.set_output(plant.output)
        return root.trace_id


# ------------------------------------------------------------------ reading stored bytes
def _forms(needle: str) -> set[bytes]:
    """The needle as stored raw, and as JSON text stores it (escaped)."""
    return {needle.encode(), json.dumps(needle)[1:-1].encode(), json.dumps(needle, ensure_ascii=False)[1:-1].encode()}


def assert_no_needle(where: str, blob: bytes, plant: Plant) -> None:
    for needle in plant.needles:
        for form in _forms(needle):
            at = blob.find(form)
            assert at < 0, (f"secret leaked into {where}: {needle!r} at byte {at}: "
                            f"...{blob[max(0, at - 160):at + len(form) + 80]!r}...")


def assert_kept(where: str, blob: bytes, plant: Plant) -> None:
    assert b"[REDACTED]" in blob, f"{where}: nothing redacted"
    for frag in plant.kept:
        assert frag.encode() in blob, f"{where}: allow-listed {frag!r} not stored as is"


def files_bytes(*paths: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in paths if p.exists())


def tree_bytes(root: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def sqlite_rows(path: Path, where: str = "", args: tuple[Any, ...] = ()) -> bytes:
    """Every stored value of every table, read back through SQLite (rows that overflow pages in the
    file are whole here), as UTF-8 text."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: list[str] = []
        for t in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')]
            clause = where if where and "trace_id" in cols else ""
            for row in conn.execute(f'SELECT * FROM "{t}" {clause}', args if clause else ()):
                out.extend(str(v) for v in row)
        return "\n".join(out).encode()
    finally:
        conn.close()


def assert_balanced(client: tracewire.Client) -> dict[str, Any]:
    s = client.stats()
    assert balanced(s), s
    assert not s["dropped"] and not s["internal_errors"], s
    assert s["withheld"] == {"events": 0, "values": 0, "mask_failures": 0}, s
    return s


# No shrinking: an example costs a client's start, flush and shutdown; a failure's message already
# names the leaked secret and the stored bytes around it.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ the properties
@SETTINGS
@given(plant=plants())
def test_secrets_never_reach_sqlite_jsonl_or_the_collector_store(
    plant: Plant, collector: Collector, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """(a) SQLite files, (b) JSONL file, (d) the collector's SQLite store, from one client that writes
    all three; its own spool directory (acknowledged records) is checked as well."""
    d = tmp_path_factory.mktemp("ex")
    db, jsonl, spool = d / "t.db", d / "t.jsonl", d / "spool"
    client = tracewire.init(sink="sqlite,jsonl,http", db=str(db), jsonl_path=str(jsonl), spool_dir=str(spool),
                            allow_keys=[USER_ALLOW_KEY], flush_interval=0.01, **collector.settings())
    trace_id = record(plant)
    assert client.flush(30), client.stats()
    s = assert_balanced(client)
    dl = s["delivery"]["http"]
    assert dl["shipped"] == dl["committed"] == s["emitted"] and not dl["dead_lettered"], dl
    assert tracewire.shutdown(30)

    stored = files_bytes(db, Path(f"{db}-wal"))
    assert_no_needle("the SQLite sink's files", stored, plant)
    logical = sqlite_rows(db)
    assert_no_needle("the SQLite sink's rows", logical, plant)
    assert_kept("the SQLite sink", logical, plant)

    lines = jsonl.read_bytes()
    assert lines.count(b"\n") == s["emitted"]
    assert_no_needle("the JSONL file", lines, plant)
    assert_kept("the JSONL file", lines, plant)

    assert_no_needle("the http sink's spool (after delivery)", tree_bytes(spool), plant)

    rows = sqlite_rows(collector.db, "WHERE trace_id = ?", (trace_id,))
    assert rows.count(b'"trace_id"') >= s["emitted"], "the collector did not store the example's events"
    assert_no_needle(f"the collector's rows of trace {trace_id}", rows, plant)
    assert_kept("the collector's store", rows, plant)
    db_files = files_bytes(collector.db, Path(f"{collector.db}-wal"))
    assert_no_needle("the collector's database files", db_files, plant)
    assert_no_needle("the collector's log", files_bytes(collector.workdir / "collector.log"), plant)


@SETTINGS
@given(plant=plants())
def test_secrets_never_reach_the_spool_of_an_unreachable_collector(
    plant: Plant, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """(c) The http sink's spool while the collector cannot be reached: every batch stays on disk."""
    d = tmp_path_factory.mktemp("spool")
    spool = d / "spool"
    client = tracewire.init(sink="http", endpoint=f"http://127.0.0.1:{free_port()}", api_key="tw_test_key",
                            spool_dir=str(spool), allow_keys=[USER_ALLOW_KEY], flush_interval=0.01,
                            http_timeout=0.5, retry_max_backoff=0.2)
    record(plant)
    deadline = time.monotonic() + 30
    while True:  # committed to the spool: `written` for the client, shipped nowhere
        s = client.stats()
        if s["emitted"] and s["pending"] == 0 and s["written"] == s["emitted"]:
            break
        assert time.monotonic() < deadline, s
        time.sleep(0.005)
    s = assert_balanced(client)
    dl = s["delivery"]["http"]
    assert dl["committed"] == s["emitted"] and dl["shipped"] == 0, dl
    tracewire.shutdown(0.05)  # cannot settle with nobody listening; the spool is closed, its files stay
    blob = tree_bytes(spool)
    assert blob.count(b'"trace_id"') >= s["emitted"], "the spool does not hold the example's events"
    assert_no_needle("the http sink's spool directory", blob, plant)
    assert_kept("the http sink's spool", blob, plant)


# ------------------------------------------------------------------ leaks the properties found, pinned
# Each case below is a minimal input the properties above generated (or led to) whose secret was
# stored; they are spelled out so that the failure is deterministic and names its cause.
V = "Zq8" + _expand("pinned", ALNUM, 17)  # the secret value of the pinned cases


def stored_locally(tmp_path: Path, act: Any) -> bytes:
    """Runs `act()` on a fresh sqlite+jsonl client; returns everything the two sinks stored (file
    bytes and the rows read back)."""
    db, jsonl = tmp_path / "t.db", tmp_path / "t.jsonl"
    client = tracewire.init(sink="sqlite,jsonl", db=str(db), jsonl_path=str(jsonl), flush_interval=0.01)
    act()
    assert client.flush(60)  # scrubbing dozens of 16 KiB stack traces takes seconds on a loaded machine
    assert_balanced(client)
    assert tracewire.shutdown(10)
    return jsonl.read_bytes() + files_bytes(db, Path(f"{db}-wal")) + sqlite_rows(db)


def _context(blob: bytes, needle: str) -> bytes:
    at = blob.find(needle.encode())
    return blob[max(0, at - 120):at + len(needle) + 40]


@pytest.mark.parametrize("text", [
    "connection failed: password={v}",
    "Error: api_key={v}",
    "config loaded: aws_secret_access_key = {v}",
    "debug dump: 'SERVICE_PASSWORD': '{v}'",
    "retrying after error:\tsessionToken=\"{v} and more\"",
])
def test_a_secret_pair_after_a_label_is_scrubbed(tmp_path: Path, text: str) -> None:
    """`label: key=value` in prose: the pair rule must not take `key=value` for the label's value."""
    blob = stored_locally(tmp_path, lambda: tracewire.record("log", input={"message": text.format(v=V)}))
    assert V.encode() not in blob, _context(blob, V)


@pytest.mark.parametrize("module,name", [("builtins", "ValueError"), ("app.errors", "UpstreamError"),
                                         ("google.auth.exceptions", "RefreshError")])
@pytest.mark.parametrize("message", ["password={v}", "client_secret = {v}", "'api_key': '{v}' rejected"])
def test_an_error_message_that_starts_with_a_secret_is_scrubbed_in_the_stack_trace(
    tmp_path: Path, module: str, name: str, message: str
) -> None:
    """The stack trace's last line is `module.Name: <message>`: the message is scrubbed in `message`
    and must be in `stacktrace` too, whatever the exception type's name reads as."""
    cls = error_class(module, name)

    def act() -> None:
        try:
            with tracewire.span("tool", "call"):
                raise cls(message.format(v=V))
        except cls:
            pass

    blob = stored_locally(tmp_path, act)
    assert V.encode() not in blob, _context(blob, V)


def test_a_cut_stack_trace_keeps_no_part_of_a_secret(tmp_path: Path) -> None:
    """A long chained stack trace is cut to its last 16 KiB: wherever the cut falls, no part of a
    private key or token in it may be kept (the cut must not take away what the scrubber keys on)."""
    body = base64.b64encode(b"".join(hashlib.sha256(f"{V}:{i}".encode()).digest() for i in range(19))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"
    token = "sk-proj-" + _expand("cut", ALNUM, 48)

    def act() -> None:
        for pad in range(15_500, 16_500, 17):
            try:
                with tracewire.span("tool", "call"):
                    try:
                        raise ValueError(f"loaded key:\n{pem}\nand {token}")
                    except ValueError as exc:
                        raise RuntimeError("y" * pad) from exc
            except RuntimeError:
                pass

    blob = stored_locally(tmp_path, act)
    kept = [line for line in lines if line.encode() in blob]
    assert not kept, f"{len(kept)} of {len(lines)} private-key lines stored: {_context(blob, kept[0])!r}"
    parts = [token[i:i + 16] for i in range(8, len(token) - 15)]
    assert not [p for p in parts if p.encode() in blob], _context(blob, next(p for p in parts if p.encode() in blob))


def test_a_span_kind_is_scrubbed_like_its_type(tmp_path: Path) -> None:
    """`tracewire.span(kind, name)`: `type` (`<kind>.start`) is scrubbed; `kind` must be as well."""
    token = "sk-proj-" + V

    def act() -> None:
        with tracewire.span(token, "call"):
            pass

    blob = stored_locally(tmp_path, act)
    assert token.encode() not in blob, _context(blob, token)
