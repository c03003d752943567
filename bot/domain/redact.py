"""Secret values out of text: a Redactor over known values, and URLs shown without credentials.

Pure functions and values only (no environment, no I/O): the engine builds one Redactor from
every secret golive knows and applies it where text leaves golive (the database and Slack).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import SplitResult, quote, quote_plus, unquote_plus, urlsplit, urlunsplit

REDACTED = "[redacted]"
# Shorter values are not redacted: replacing every "1234" or "admin" in a message would shred
# ordinary text, and a value that short is not protecting much. Real tokens are far longer.
MIN_SECRET_LENGTH = 8

T = TypeVar("T")

# Query parameters that carry credentials in the wild: OAuth and API tokens, signed URLs (S3,
# GCS, Azure SAS), basic passwords. Matched case-insensitively with `-` read as `_`.
_CREDENTIAL_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "auth_token",
        "authorization",
        "client_secret",
        "code",
        "id_token",
        "jwt",
        "key",
        "passwd",
        "password",
        "private_token",
        "pwd",
        "refresh_token",
        "secret",
        "session",
        "sessionid",
        "sig",
        "signature",
        "token",
        "x_amz_credential",
        "x_amz_security_token",
        "x_amz_signature",
        "x_goog_credential",
        "x_goog_signature",
    }
)
_CREDENTIAL_SUFFIXES = ("_token", "_key", "_secret", "_password", "_signature", "_sig")


def is_credential_param(name: str) -> bool:
    """True for a query parameter name that usually carries a credential."""
    key = unquote_plus(name).strip().lower().replace("-", "_")
    return key in _CREDENTIAL_PARAMS or key.endswith(_CREDENTIAL_SUFFIXES)


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: not a URL we can take apart
        return None


def safe_url(url: str) -> str:
    """The URL with its user-info password (or a lone user-info token) and credential-looking
    query values replaced by `[redacted]`; anything else is left exactly as it was."""
    parts = _split(url)
    if parts is None:
        return re.sub(r"//[^/?#\s]*@", f"//{REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    pairs = parts.query.split("&") if parts.query else []
    query = "&".join(
        f"{name}={REDACTED}" if sep and value and is_credential_param(name) else pair
        for pair in pairs
        for name, sep, value in [pair.partition("=")]
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_credentials(url: str) -> list[str]:
    """The credential values inside a URL (what `safe_url` hides), raw and decoded."""
    parts = _split(url)
    if parts is None:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, value = pair.partition("=")
        if sep and value and is_credential_param(name):
            found.append(value)
    return [v for raw in found for v in dict.fromkeys((raw, unquote_plus(raw))) if v]


class Redactor:
    """Replaces every known secret value (and its URL-encoded forms) by `[redacted]`.

    Values shorter than `min_length` are ignored so that short ones do not shred text.
    """

    def __init__(self, values: Iterable[str] = (), min_length: int = MIN_SECRET_LENGTH) -> None:
        forms: set[str] = set()
        for value in values:
            for candidate in (value, value.strip()):
                if len(candidate) >= min_length:
                    forms.update((candidate, quote(candidate, safe=""), quote_plus(candidate)))
        # Longest first, so a secret that contains another is replaced whole.
        self.values: tuple[str, ...] = tuple(sorted(forms, key=lambda v: (-len(v), v)))
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if forms else None
        self._needles = tuple(dict.fromkeys(v.encode("utf-8") for v in self.values))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:  # never the values themselves
        return f"Redactor({len(self.values)} forms)"

    def text(self, text: str) -> str:
        """The text with every known secret replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def scrub(self, value: T) -> T:
        """Strings anywhere inside dicts, lists and tuples redacted (a new value; keys too)."""
        if self._pattern is None:
            return value
        return self._scrub(value)  # type: ignore[no-any-return]

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._scrub(k): self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._scrub(v) for v in value)
        return value

    @property
    def longest(self) -> int:
        """The length in bytes of the longest form (how far a secret can straddle a cut)."""
        return max((len(n) for n in self._needles), default=0)

    def safe_cut(self, data: bytes | bytearray, at: int, forward: bool) -> int:
        """A cut position near `at` that splits no secret: moved to the start (or, `forward`,
        to the end) of any secret the cut would otherwise split in two."""
        moved = True
        while moved:
            moved = False
            for needle in self._needles:
                start = data.find(needle, max(0, at - len(needle) + 1), at + len(needle) - 1)
                if start != -1 and start < at < start + len(needle):
                    at = start + len(needle) if forward else start
                    moved = True
        return at
