"""Credentials out of printed connection strings: the one function every message, banner and log
line that may hold a DSN or URL goes through."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host... The password may hold '@', '/', '?' or ':' unescaped (libpq would
# not parse some of those, but a message must not print them either), so the userinfo runs to the
# LAST '@' that is followed by something shaped like a host list and then a path, query or the end.
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#'\"]*):(?P<secret>[^\s'\"]*)@"
    r"(?=[A-Za-z0-9._\-\[\]:%,]*(?:[/?#\s'\"]|$))"
)
# password=... / sslpassword=... as a URL query parameter or a libpq keyword/value pair;
# a keyword value may be single-quoted with backslash escapes.
_KEYWORD = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_])(?:ssl)?password)(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?"  # 'quoted \' value'
    r"|[^\s&#;'\"]*)",
    re.IGNORECASE,
)


def redact_dsn(text: str) -> str:
    """`text` with every URL userinfo password and every `password=` / `sslpassword=` value masked.
    Works on a bare DSN and on free text that embeds one (error messages, log lines)."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _KEYWORD.sub(lambda m: f"{m.group('key')}{m.group('eq')}{MASK}" if m.group("value") else m.group(0), out)


def escape_userinfo_at(url: str) -> str:
    """`postgresql://user:p@ss@host/db` -> `postgresql://user:p%40ss@host/db`: libpq ends the userinfo
    at the first '@', so an unescaped '@' in a password would make the rest of it the host name."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if authority.count("@") < 2:
        return url
    userinfo, _, hosts = authority.rpartition("@")
    return f"{scheme}://{userinfo.replace('@', '%40')}@{hosts}{tail}"
