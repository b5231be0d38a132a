"""Server-side scrubbing, applied to every event before anything is stored.

Values under a key that contains a denylisted word (settings.OPS_ERRORS_SCRUB_FIELDS:
password, token, secret, cookie, authorization, ...) or is exactly one of EXACT_FIELDS (`key`,
`dsn`, ...) are replaced; so are such parameters in query strings anywhere in text
(`?key=...`, `&dsn=...`), card-like numbers (Luhn-valid), bearer tokens and URL passwords.

Linear time, whatever the input: the data is bounded first (LIMITS: string length, key length,
depth, items per container), and only then searched, by patterns whose work per character is
bounded by a constant (no nested or overlapping unbounded quantifiers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlencode

FILTERED = "[Filtered]"
TRUNCATED = "[Truncated]"
ELLIPSIS = "…"

# The bounds applied before any pattern work (README, "Scrubbing"); Sentry's SDKs and server
# document limits of the same kind (max_value_length, databag depth and breadth).
MAX_STRING_LENGTH = 16_384  # characters; a longer string keeps its start, ending in "…"
MAX_KEY_LENGTH = 256  # characters of a mapping key
MAX_DEPTH = 20  # nesting levels from the event's root; deeper containers become "[Truncated]"
MAX_ITEMS = 200  # entries per mapping (the first) and per list (the last: innermost frames,
# latest breadcrumbs, the exception that was raised last)
LIMITS = {
    "max_string_length": MAX_STRING_LENGTH,
    "max_key_length": MAX_KEY_LENGTH,
    "max_depth": MAX_DEPTH,
    "max_items": MAX_ITEMS,
}

# Names scrubbed when a key is exactly one of these (substring matching would hit "monkey" or
# "keyboard"), whatever OPS_ERRORS_SCRUB_FIELDS says.
EXACT_FIELDS = frozenset({"key", "passphrase", "dsn", "token", "secret"})

# Every pattern below does a bounded amount of work per starting position: its repetitions are
# either bounded ({m,n}) or stop at a delimiter the next match attempt starts beyond.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_BEARER = re.compile(r"\b(bearer|token|basic)\s{1,16}[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# Anchored on "://" rather than on the scheme: a scheme pattern ([a-z][a-z0-9+.-]*) retried at
# every word boundary of "a.a.a.a…" was quadratic (a 1 MiB string took longer than 20 s).
_URL_PASSWORD = re.compile(r"://([^:/@\s]*):[^@/\s]+@")
# A query parameter: at the start of the text or after "?" / "&"; the name is bounded, the value
# runs to the next delimiter.
_QUERY_PARAM = re.compile(r"(^|[?&])([^=&?#\s]{1,64})=([^&#\s]*)")
_LEADING_PARAM = re.compile(r"[^=&?#\s]{1,64}=")
_QUERY_KEYS = ("query_string", "query")
_DROP_DIGITS = str.maketrans("", "", "0123456789")
_NON_DIGITS = re.compile(r"\D")


def truncate(value: str, limit: int = MAX_STRING_LENGTH) -> str:
    """At most `limit` characters: a longer string keeps its start and ends in "…"."""
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = _NON_DIGITS.sub("", match.group(0))
    return FILTERED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


class Scrubber:
    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(self._norm(f) for f in fields if f.strip())
        # A string holds a sensitive query parameter only if it holds one of these words
        # (literal alternatives: a bounded amount of work per position).
        words = sorted(set(self.fields) | EXACT_FIELDS, key=len, reverse=True)
        self._param_words = re.compile("|".join(re.escape(w) for w in words))
        self._verdicts: dict[str, bool] = {}

    @staticmethod
    def _norm(key: str) -> str:
        return key.strip().lower().replace("-", "_")

    def sensitive(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            norm = self._norm(key[:MAX_KEY_LENGTH])
            verdict = norm in EXACT_FIELDS or any(f in norm for f in self.fields)
            if len(self._verdicts) < 50_000:
                self._verdicts[key] = verdict
        return verdict

    def _mask_param(self, match: re.Match[str]) -> str:
        if match.group(3) and self.sensitive(match.group(2)):
            return f"{match.group(1)}{match.group(2)}={FILTERED}"
        return match.group(0)

    def scrub_string(self, value: str) -> str:
        if len(value) > MAX_STRING_LENGTH:
            value = truncate(value)
        # Cheap C-level checks first: most strings need none of the substitutions.
        if "\x00" in value:  # PostgreSQL text and jsonb refuse NUL characters
            value = value.replace("\x00", "")
        if len(value) >= 13 and len(value) - len(value.translate(_DROP_DIGITS)) >= 13:
            value = _CARD.sub(_mask_card, value)
        lower = value.lower()
        if "bearer" in lower or "token" in lower or "basic" in lower:
            value = _BEARER.sub(lambda m: f"{m.group(1)} {FILTERED}", value)
        if "://" in value and "@" in value:
            value = _URL_PASSWORD.sub(lambda m: f"://{m.group(1)}:{FILTERED}@", value)
        if "=" in value and ("?" in value or "&" in value or _LEADING_PARAM.match(value)):
            probe = lower.replace("-", "_")  # as sensitive() normalises names
            if self._param_words.search(probe):
                value = _QUERY_PARAM.sub(self._mask_param, value)
        return value

    def scrub_query(self, value: str) -> str:
        value = truncate(value)
        pairs = parse_qsl(value, keep_blank_values=True, max_num_fields=None)
        if not pairs:
            return self.scrub_string(value)
        return urlencode(
            [(k, FILTERED if self.sensitive(k) else self.scrub_string(v)) for k, v in pairs],
            safe="[]",
        )

    def scrub(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.scrub_string(value)
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            entries = value.items()
            if len(value) > MAX_ITEMS:
                entries = islice(entries, MAX_ITEMS)  # type: ignore[assignment]
            out: dict[str, Any] = {}
            for key, item in entries:
                if not isinstance(key, str):
                    key = str(key)
                if len(key) > MAX_KEY_LENGTH:
                    key = truncate(key, MAX_KEY_LENGTH)
                if "\x00" in key:
                    key = key.replace("\x00", "")
                if self.sensitive(key) and item not in (None, "", [], {}):
                    out[key] = FILTERED
                elif key in _QUERY_KEYS and isinstance(item, str):
                    out[key] = self.scrub_query(item)
                else:
                    out[key] = self.scrub(item, depth + 1)
            return out
        if isinstance(value, list):
            if depth >= MAX_DEPTH:
                return TRUNCATED
            # Header and query lists come as [["Cookie", "..."], ...] pairs.
            return [
                [self.scrub(item[0], depth + 2), FILTERED]
                if isinstance(item, list) and len(item) == 2 and self.sensitive(item[0])
                else self.scrub(item, depth + 1)
                for item in (value[-MAX_ITEMS:] if len(value) > MAX_ITEMS else value)
            ]
        return value
