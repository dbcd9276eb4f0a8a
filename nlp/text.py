"""Low-level Vietnamese text helpers shared by normalisation and entity extraction.

`fold` removes diacritics and case while remembering, for every folded character, where it came from in the
original text, so that matches found on folded text can be reported with offsets into the original.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch in "đĐ":
        return "d"
    base = unicodedata.normalize("NFD", ch)
    out = "".join(c for c in base if not unicodedata.combining(c))
    return out.lower()[:1] if out else ""


def _table() -> dict[int, str]:
    table = {}
    for cp in [*range(0x41, 0x5B), *range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        f = _fold_char(ch)
        if f != ch and len(f) == 1:
            table[cp] = f
    return table


_TABLE = _table()
_COMBINING = re.compile(r"[\u0300-\u036f]")


def fold(text: str) -> str:
    """Lower-case, diacritics-free text ("Đà Nẵng" → "da nang")."""
    if _COMBINING.search(text) is None:  # fast path: NFC text folds character for character
        return text.translate(_TABLE).lower()
    return "".join(_fold_char(ch) for ch in text)


def fold_with_index(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each folded character, its index in `text` (combining marks fold to nothing)."""
    if _COMBINING.search(text) is None:
        folded = text.translate(_TABLE).lower()
        if len(folded) == len(text):
            return folded, list(range(len(text)))
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        f = _fold_char(ch)
        if f:
            chars.append(f)
            index.append(i)
    return "".join(chars), index


class Folded:
    """A text and its folded form, with span mapping back to the original."""

    __slots__ = ("folded", "index", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.folded, self.index = fold_with_index(text)

    def orig(self, start: int, end: int) -> tuple[int, int]:
        if start >= end:
            return (self.index[start] if start < len(self.index) else len(self.text),) * 2
        o_start = self.index[start]
        o_end = self.index[end - 1] + 1
        while o_end < len(self.text) and unicodedata.combining(self.text[o_end]):
            o_end += 1
        return o_start, o_end
