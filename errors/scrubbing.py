"""Server-side scrubbing, applied to every event before anything is stored.

Values under a key that contains a denylisted word (settings.OPS_ERRORS_SCRUB_FIELDS:
password, token, secret, cookie, authorization, ...) are replaced; so are card-like numbers
(Luhn-valid), bearer tokens and URL passwords anywhere in strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

FILTERED = "[Filtered]"
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_BEARER = re.compile(r"\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)
_QUERY_KEYS = ("query_string", "query")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return FILTERED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


_DROP_DIGITS = str.maketrans("", "", "0123456789")


class Scrubber:
    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = [self._norm(f) for f in fields if f.strip()]
        self._field_re = (
            re.compile("|".join(re.escape(f) for f in self.fields)) if self.fields else None
        )
        self._verdicts: dict[str, bool] = {}

    @staticmethod
    def _norm(key: str) -> str:
        return key.strip().lower().replace("-", "_")

    def sensitive(self, key: object) -> bool:
        if not isinstance(key, str) or self._field_re is None:
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = bool(self._field_re.search(self._norm(key)))
            if len(self._verdicts) < 50_000:
                self._verdicts[key] = verdict
        return verdict

    def scrub_string(self, value: str) -> str:
        # Cheap C-level checks first: most strings need none of the substitutions.
        if "\x00" in value:  # PostgreSQL text and jsonb refuse NUL characters
            value = value.replace("\x00", "")
        if len(value) >= 13 and len(value) - len(value.translate(_DROP_DIGITS)) >= 13:
            value = _CARD.sub(_mask_card, value)
        lower = value.lower()
        if "bearer" in lower or "token" in lower or "basic" in lower:
            value = _BEARER.sub(lambda m: f"{m.group(1)} {FILTERED}", value)
        if "://" in value and "@" in value:
            value = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{FILTERED}@", value)
        return value

    def scrub_query(self, value: str) -> str:
        pairs = parse_qsl(value, keep_blank_values=True)
        if not pairs:
            return self.scrub_string(value)
        return urlencode(
            [(k, FILTERED if self.sensitive(k) else self.scrub_string(v)) for k, v in pairs],
            safe="[]",
        )

    def scrub(self, value: Any, depth: int = 0) -> Any:
        if depth > 30:  # events are depth-limited by SDKs; anything deeper is dropped
            return FILTERED
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
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
            # Header lists come as [["Cookie", "..."], ...] pairs.
            return [
                [item[0], FILTERED]
                if isinstance(item, list) and len(item) == 2 and self.sensitive(item[0])
                else self.scrub(item, depth + 1)
                for item in value
            ]
        if isinstance(value, str):
            return self.scrub_string(value)
        return value
