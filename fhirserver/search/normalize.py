"""Text normalisation shared by string and token :text search (search.html#string):
case- and accent-insensitive ("José" matches "jose")."""
from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    if text.isascii():          # the common case: nothing to decompose, casefold == lower
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for index ranges)."""
    return prefix + "\U0010ffff"
