"""Normalised SQL for grouping slow queries: literals become ?, lists of them collapse, comments
and runs of whitespace go. One pass over the text, no regular expressions: the statements are
whatever the application sent, and a backtracking pattern on them could take forever."""

from __future__ import annotations

import hashlib

# Statements longer than this are grouped by their start (the shape is decided early).
MAX_SCANNED = 20_000


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    """Index just past the literal that opens at sql[i]; a doubled quote is an escaped one."""
    n = len(sql)
    i += 1
    while i < n:
        if sql[i] == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _skip_comment(sql: str, i: int) -> int:
    """Index just past a -- or /* */ comment that opens at sql[i]."""
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end
    end = sql.find("*/", i + 2)
    return len(sql) if end < 0 else end + 2


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


class _Out:
    """The normalised text, with runs of placeholders ("?, ?, ?") collapsed to "?, ..."."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.after_placeholder = -1  # len(parts) right after the last "?", if nothing but ", "
        self.collapsed = False

    def space(self) -> None:
        if self.parts and self.parts[-1] != " ":
            self.parts.append(" ")

    def text(self, chunk: str) -> None:
        self.parts.append(chunk)

    def placeholder(self) -> None:
        mark = self.after_placeholder
        if mark >= 0 and len(self.parts) - mark <= 2 and "".join(self.parts[mark:]).strip() == ",":
            if not self.collapsed:
                self.parts[mark:] = [", ..."]
                self.collapsed = True
            else:
                del self.parts[mark:]
        else:
            self.parts.append("?")
            self.collapsed = False
        self.after_placeholder = len(self.parts)

    def result(self) -> str:
        return "".join(self.parts).strip()


def normalize_sql(sql: str) -> str:
    """The statement's shape, e.g. `SELECT * FROM t WHERE id IN (?, ...) AND name = ?`."""
    sql = sql[:MAX_SCANNED]
    out = _Out()
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            out.space()
            i += 1
        elif ch == "'":
            i = _skip_quoted(sql, i, "'")
            out.placeholder()
        elif ch == '"':
            end = _skip_quoted(sql, i, '"')
            out.text(sql[i:end])
            i = end
        elif sql.startswith("--", i) or sql.startswith("/*", i):
            i = _skip_comment(sql, i)
            out.space()
        elif ch == "%" and sql.startswith("%s", i):
            out.placeholder()
            i += 2
        elif ch.isdigit() or (ch == "$" and i + 1 < n and sql[i + 1].isdigit()):
            i += 1
            while i < n and (sql[i].isdigit() or sql[i] == "."):
                i += 1
            out.placeholder()
        elif _is_word(ch):
            start = i
            while i < n and _is_word(sql[i]):
                i += 1
            out.text(sql[start:i])
        else:
            out.text(ch)
            i += 1
    return out.result()


def fingerprint(normalized: str) -> str:
    """A short stable key for grouping by the normalised text."""
    return hashlib.blake2b(normalized.encode(), digest_size=16).hexdigest()
