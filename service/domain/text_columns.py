"""A dataset's problem texts as pre-encoded JSON fragments in numpy arrays.

A batch response spends most of its non-framework time on the texts: 512 lookups into a
dict of a million entries (a memory miss each, ~1 µs in a big process), then orjson encoding
the same strings on every request. Here each problem's text is encoded once, when it is
loaded, into one shared byte buffer as the fragment its row in a response starts with:

    "problem_id":"p7","prompt":"What is 7 + 7?","answer":"14",

(orjson's own encoding, so the bytes equal what orjson.dumps of the response would write).
A response is then numpy gathers of byte ranges (domain/batch_body.py): no per-item Python
object on the way out. Memory per problem: the fragment, 8 bytes of id and 32 of offsets.

Slots follow the dataset's problem ids in ascending order (ids are only ever appended, the
same order the sampling index uses), and fill in any order: by a background prefill in id
order, and by draws that read the texts they miss. A slot never changes once written (an
overwrite of a problem replaces the whole TextColumns, see domain/prompt_cache.py: the new
one takes the ids and offset arrays over in O(texts held) and the old one is sealed, empty
for whoever still holds it), so a reader only has to see each row whole: rows and the
buffer are published under a lock held for microseconds, never across I/O or encoding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter

import numpy as np
import orjson

Text = tuple[str, str, str | None]  # (external_id, prompt, answer)

KEY_ID = b'"problem_id":'
KEY_PROMPT = b'"prompt":'
KEY_ANSWER = b'"answer":'
_TO_PROMPT, _TO_ANSWER = b"," + KEY_PROMPT, b"," + KEY_ANSWER
# Offsets of a slot: where the id, prompt and answer values start, and where the fragment
# ends; the fragment starts len(KEY_ID) before the id. All 0: not loaded (so a slot array is
# np.zeros, whose pages the OS maps lazily: starting a dataset over costs no 32 MB fill).
ROW = 4
SLOT_BYTES = 8 + 8 * ROW  # an id and its offsets


def encode(texts: Sequence[Text]) -> tuple[bytes, np.ndarray]:
    """The fragments of ``texts`` back to back, and each one's (id, prompt, answer, end)
    offsets relative to the start of the returned bytes."""
    dumps = orjson.dumps  # the loops below run in C: map, zip, chain, join
    ids = list(map(dumps, map(itemgetter(0), texts)))
    prompts = list(map(dumps, map(itemgetter(1), texts)))
    answers = list(map(dumps, map(itemgetter(2), texts)))
    n = len(texts)
    pieces = zip(
        repeat(KEY_ID, n), ids, repeat(_TO_PROMPT, n), prompts, repeat(_TO_ANSWER, n), answers,
        repeat(b",", n), strict=True,
    )  # fmt: skip
    data = b"".join(chain.from_iterable(pieces))
    lengths = np.empty((n, 3), dtype=np.int64)
    lengths[:, 0] = np.fromiter(map(len, ids), np.int64, n)
    lengths[:, 1] = np.fromiter(map(len, prompts), np.int64, n)
    lengths[:, 2] = np.fromiter(map(len, answers), np.int64, n)
    sizes = lengths.sum(axis=1) + len(KEY_ID) + len(KEY_PROMPT) + len(KEY_ANSWER) + 3
    starts = np.cumsum(sizes) - sizes
    rows = np.empty((n, ROW), dtype=np.int64)
    rows[:, 0] = starts + len(KEY_ID)
    rows[:, 1] = rows[:, 0] + lengths[:, 0] + 1 + len(KEY_PROMPT)
    rows[:, 2] = rows[:, 1] + lengths[:, 1] + 1 + len(KEY_ANSWER)
    rows[:, 3] = rows[:, 2] + lengths[:, 2] + 1
    return data, rows


def gather(buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """buffer[starts[0]:ends[0]] + buffer[starts[1]:ends[1]] + ... as one uint8 array."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint8)
    # Index of each output byte: its segment's start, plus its position in the output minus
    # where that segment begins there.
    shift = starts - (np.cumsum(lengths) - lengths)
    index = np.repeat(shift, lengths)
    index += np.arange(total, dtype=np.int64)
    gathered: np.ndarray = buffer[index]
    return gathered


class TextColumns:
    """Pre-encoded texts of one dataset's problems, addressed by slot (see module doc)."""

    def __init__(self) -> None:
        # _publish guards what readers copy (rows written in place, arrays swapped) and is
        # held for microseconds; _write serialises writers, who copy and encode outside it.
        self._publish = threading.Lock()
        self._write = threading.Lock()
        self._ids = np.empty(0, dtype=np.int64)  # sorted problem ids: slot -> id
        # Emptied (emptied() handed the ids and offsets on): holds nothing from then on, and
        # stores nothing, whoever still has a reference.
        self._sealed = False
        self._stored: list[np.ndarray] = []  # the slots written, store by store
        self._n_stored = 0
        self._rows = np.zeros((0, ROW), dtype=np.int64)
        self._buffer = np.empty(0, dtype=np.uint8)
        self._used = 0  # bytes of the buffer written
        self._n_ids = 0
        self.loaded = 0  # slots whose text is held

    # ---- reading (the event loop calls these: no I/O) --------------------------------------

    def locate(
        self, problem_ids: np.ndarray, slots: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, rows): rows[i] are the offsets of problem i's fragment in buffer, all 0
        where it is not loaded (or not known here). ``slots``: the sampling index's slots of the
        same problems, used when they match (the two share the slot order), else searched."""
        with self._publish:
            if self._sealed:
                return self._buffer, np.zeros((len(problem_ids), ROW), dtype=np.int64)
            ids, n, buffer = self._ids, self._n_ids, self._buffer
            if slots is None or not _matches(ids, n, slots, problem_ids):
                slots = _search(ids, n, problem_ids)
            if len(slots) and int(slots.min()) >= 0:
                return buffer, self._rows[slots]
            located = np.zeros((len(slots), ROW), dtype=np.int64)
            known = slots >= 0
            located[known] = self._rows[slots[known]]
            return buffer, located

    def decode(self, problem_ids: np.ndarray) -> dict[int, Text]:
        """id -> (external_id, prompt, answer) of the loaded ones among ``problem_ids``."""
        problem_ids = np.asarray(problem_ids, dtype=np.int64)
        buffer, rows = self.locate(problem_ids)
        have = rows[:, 3] > 0
        if not have.any():
            return {}
        starts, ends = value_bounds(rows[have])
        values = [
            orjson.loads(b"[" + gather(buffer, starts[f], ends[f]).tobytes()[:-1] + b"]")
            for f in range(3)
        ]
        pids = problem_ids[have].tolist()
        return dict(zip(pids, zip(*values, strict=True), strict=True))

    def missing(self, problem_ids: np.ndarray) -> np.ndarray:
        problem_ids = np.asarray(problem_ids, dtype=np.int64)
        _, rows = self.locate(problem_ids)
        absent: np.ndarray = problem_ids[rows[:, 3] == 0]
        return absent

    @property
    def nbytes(self) -> int:
        """What these columns hold: fragments written, ids and offsets."""
        return self._used + self._n_ids * SLOT_BYTES

    @property
    def text_bytes(self) -> int:
        return self._used

    @property
    def n_ids(self) -> int:
        return self._n_ids

    @property
    def max_id(self) -> int:
        return int(self._ids[self._n_ids - 1]) if self._n_ids else 0

    # ---- writing (threadpool / background threads) -----------------------------------------

    def emptied(self) -> TextColumns:
        """New columns with the same ids and no texts (what dropping the texts leaves), in
        O(texts held), not O(ids): they take this one's ids and offsets over, the offsets
        written so far zeroed (or fresh zeros, mapped lazily, when most slots were written),
        and this one is sealed (it holds and stores nothing from then on: a reader still
        holding it finds every text missing and reads them again)."""
        fresh = TextColumns()
        with self._write, self._publish:
            n = self._n_ids
            if self._n_stored <= n // 8:
                if self._stored:
                    self._rows[np.concatenate(self._stored)] = 0
                fresh._rows = self._rows
            else:
                fresh._rows = np.zeros((len(self._ids), ROW), dtype=np.int64)
            fresh._ids, fresh._n_ids = self._ids, n
            self._sealed = True
        return fresh

    def add_ids(self, new_ids: np.ndarray) -> None:
        """Append problem ids (ascending, all larger than every id held); slots start empty."""
        new_ids = np.asarray(new_ids, dtype=np.int64)
        with self._write:
            if self._sealed:
                return
            new_ids = new_ids[new_ids > self.max_id] if self._n_ids else new_ids
            if not len(new_ids):
                return
            n_old = self._n_ids
            n = n_old + len(new_ids)
            if n <= len(self._ids):
                with self._publish:
                    self._ids[n_old:n] = new_ids
                    self._n_ids = n
                return
            # Fresh arrays, grown geometrically, filled outside the publish lock (rows only
            # change under the write lock, which we hold); readers keep the old ones.
            capacity = max(n, len(self._ids) + len(self._ids) // 2)
            ids = np.empty(capacity, dtype=np.int64)
            ids[:n_old] = self._ids[:n_old]
            ids[n_old:n] = new_ids
            rows = np.zeros((capacity, ROW), dtype=np.int64)
            rows[:n_old] = self._rows[:n_old]
            with self._publish:
                self._ids, self._rows, self._n_ids = ids, rows, n

    def store(
        self, problem_ids: Sequence[int], texts: Sequence[Text], max_bytes: int | None = None
    ) -> int | None:
        """Encode and hold these problems' texts (ids not known here, or already held, are
        skipped; sealed columns store nothing); returns the bytes added, or None (nothing
        stored) when that would take ``nbytes`` beyond ``max_bytes``."""
        ids = np.asarray(problem_ids, dtype=np.int64)
        if not len(ids):
            return 0
        with self._write:
            if self._sealed:
                return 0
            with self._publish:
                slots = _search(self._ids, self._n_ids, ids)
                known = slots >= 0
                held = np.zeros(len(ids), dtype=bool)
                held[known] = self._rows[slots[known], 3] > 0
            fresh = np.flatnonzero(known & ~held)
            if not len(fresh):
                return 0
            # A slot listed twice (a repeated id) is stored once.
            slots, first = np.unique(slots[fresh], return_index=True)
            data, rows = encode([texts[i] for i in fresh[first].tolist()])
            if max_bytes is not None and self.nbytes + len(data) > max_bytes:
                return None
            used, buffer = self._used, self._buffer
            if used + len(data) > len(buffer):
                buffer = np.empty(max(used + len(data), 2 * len(buffer)), dtype=np.uint8)
                buffer[:used] = self._buffer[:used]  # written bytes never change
            buffer[used : used + len(data)] = np.frombuffer(data, dtype=np.uint8)
            with self._publish:
                self._buffer = buffer
                self._rows[slots] = rows + used
                self._used = used + len(data)
                self.loaded += len(slots)
            self._n_stored += len(slots)
            # emptied() zeroes these slots, or allocates anew once they pass 1/8 of all.
            if self._n_stored <= self._n_ids // 8:
                self._stored.append(slots)
            else:
                self._stored = []
            return len(data)


def value_bounds(rows: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per field (id, prompt, answer): where each row's value starts and ends, the comma
    after it included."""
    starts = [rows[:, 0], rows[:, 1], rows[:, 2]]
    ends = [rows[:, 1] - len(KEY_PROMPT), rows[:, 2] - len(KEY_ANSWER), rows[:, 3]]
    return starts, ends


def _search(ids: np.ndarray, n: int, problem_ids: np.ndarray) -> np.ndarray:
    problem_ids = np.asarray(problem_ids, dtype=np.int64)
    if n == 0:
        return np.full(len(problem_ids), -1, dtype=np.int64)
    held = ids[:n]
    pos = np.minimum(np.searchsorted(held, problem_ids), n - 1)
    return np.where(held[pos] == problem_ids, pos, -1)


def _matches(ids: np.ndarray, n: int, slots: np.ndarray, problem_ids: np.ndarray) -> bool:
    if len(slots) != len(problem_ids):
        return False
    if not len(slots):
        return True
    if int(slots.max()) >= n or int(slots.min()) < 0:
        return False
    return bool(np.array_equal(ids[slots], problem_ids))
