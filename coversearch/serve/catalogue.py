"""Catalogue search for the page's autocomplete: id, title and artist prefixes
over an index's items table, answered from sorted keys built once at load.

Each searchable string (perf id, work id, titles, artists, and every word of
the titles and artists) is lowercased once into one sorted numpy array of keys
with the row it belongs to; a prefix query is two binary searches
(``bisect``) on a sorted list, so its cost is O(log K + hits), whatever the
catalogue size. Above :data:`WORDS_UP_TO` items only whole fields are keyed (not every
word), which bounds memory at about one key per field per item.
"""

from __future__ import annotations

import bisect
import re

import numpy as np

FIELDS = ("perf_id", "work_id", "perf_title", "perf_artist", "work_title", "work_artist")
WORDS_UP_TO = 200_000
# a very short prefix on a large catalogue matches most keys: rank only the first this many
MAX_HITS = 20_000
# ordering of matches: exact id, id prefix, then a field, then a word inside a field
_KIND_RANK = {"id": 0, "field": 1, "word": 2}
_WORD = re.compile(r"[\w']+", re.UNICODE)


class Catalogue:
    """Prefix search over the items table of one loaded index.

    Args:
        items: pyarrow.Table with ``perf_id``, ``work_id`` and optional
            title/artist columns (row i = FAISS id i).
    """

    def __init__(self, items) -> None:
        names = set(items.column_names)
        n = items.num_rows
        self.columns = {f: [("" if v is None else str(v)) for v in items.column(f).to_pylist()]
                        for f in FIELDS if f in names}
        keys: list[str] = []
        rows: list[int] = []
        kinds: list[int] = []
        words = n <= WORDS_UP_TO
        for f, values in self.columns.items():
            kind = _KIND_RANK["id"] if f in ("perf_id", "work_id") else _KIND_RANK["field"]
            for i, v in enumerate(values):
                low = v.lower()
                if not low:
                    continue
                keys.append(low)
                rows.append(i)
                kinds.append(kind)
                if words and kind:
                    for w in _WORD.findall(low)[1:]:  # the first word is the field's own prefix
                        keys.append(w)
                        rows.append(i)
                        kinds.append(_KIND_RANK["word"])
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[j] for j in order]  # a sorted list: bisect needs no fixed-width copy
        self._rows = np.asarray(rows, np.int64)[order] if keys else np.zeros(0, np.int64)
        self._kinds = np.asarray(kinds, np.int8)[order] if keys else np.zeros(0, np.int8)
        self.count = n

    def search(self, text: str, limit: int = 10) -> list[dict]:
        """Items whose id, title or artist (or a word of them) starts with ``text``.

        Args:
            text: the typed prefix (case-insensitive, surrounding spaces ignored).
            limit: at most this many items.

        Returns:
            ``[{perf_id, work_id, perf_title, perf_artist, work_title, work_artist,
            match}]``, exact id first, then id prefixes (shortest first: P_22
            before P_220), then title/artist matches; each item once.
        """
        q = text.strip().lower()
        if not q or limit < 1 or not self._keys:
            return []
        lo = bisect.bisect_left(self._keys, q)
        hi = bisect.bisect_left(self._keys, q + "\U0010ffff", lo)
        if hi <= lo:
            return []
        keys = self._keys[lo : min(hi, lo + MAX_HITS)]
        rows, kinds = self._rows[lo : lo + len(keys)], self._kinds[lo : lo + len(keys)]
        lengths = np.fromiter((len(k) for k in keys), np.int64, len(keys))
        exact = np.fromiter((k == q for k in keys), bool, len(keys))
        # rank: exact id < id prefix (shorter first) < field < word; then key order, then row
        score = kinds.astype(np.int64) * 2 + np.where(exact & (kinds == 0), 0, 1)
        pick = np.lexsort((rows, np.arange(len(keys)), lengths, score))
        out, seen = [], set()
        for j in pick:
            r = int(rows[j])
            if r in seen:
                continue
            seen.add(r)
            rec = {f: self.columns[f][r] for f in self.columns}
            rec["match"] = ["id", "field", "word"][int(kinds[j])]
            out.append(rec)
            if len(out) >= limit:
                break
        return out
