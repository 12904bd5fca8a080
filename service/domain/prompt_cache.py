"""Problems' text (external id, prompt, answer) cached in memory for the batch hot path.

A batch of 512 needs the text of 512 problems; fetching it from the database cost more than
everything else a batch does. Training draws the same frontier problems again and again, so
a bounded in-process cache answers most of them.

Staleness: problems are immutable except through an upsert that overwrites them. Such an
upsert bumps ``datasets.content_version``; this process drops the dataset's entries right
after its own commit, and every process re-reads the version at most ``check_interval_s``
apart (the same bound as index syncs), dropping the entries when it moved. A fetch that raced
an invalidation is not stored (generation check), so a stale text is never cached for good.

Cold draws: a draw of problems never served before reads their texts from the database, 512
random rows touching ~512 pages (milliseconds of page faults on a large table). So when a
process first uses a dataset, prefill() reads its texts in id order in the background (a
sequential scan, ~20x cheaper per row), up to PREFILL_SHARE of the budget, and later draws
find them in memory. The service runs each chunk only while no request is in flight
(domain/activity.py): the scan holds the GIL, and beside requests it slowed them down.

Memory: entries are charged their approximate size and the oldest are evicted first once
``max_bytes`` is reached (insertion order; cheap, and good enough for a frontier that moves).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.store import datasets as dataset_store

Text = tuple[str, str, str | None]  # (external_id, prompt, answer)

# Per entry beyond the strings' payload: dict slot, tuple, int key, str headers.
_ENTRY_OVERHEAD = 250
# prefill() stops here, leaving room for what draws bring in (it never evicts).
PREFILL_SHARE = 0.8
PREFILL_CHUNK = 2000


def _brief_pause() -> bool:
    time.sleep(0.001)
    return True


def _cost(text: Text) -> int:
    return _ENTRY_OVERHEAD + sum(len(s) for s in text if s is not None)


@dataclass
class _DatasetTexts:
    content_version: int
    checked_at: float
    generation: int = 0
    texts: dict[int, Text] = field(default_factory=dict)
    nbytes: int = 0


@dataclass
class Lookup:
    """The cached texts of some problems; ``missing`` are ids the cache does not hold."""

    found: dict[int, Text]
    missing: list[int]
    check_due: bool = False  # the dataset's version check is due: nothing was looked up

    @property
    def complete(self) -> bool:
        return not self.missing and not self.check_due


class PromptCache:
    def __init__(self, max_bytes: int, check_interval_s: float) -> None:
        self.max_bytes = max_bytes
        self.check_interval_s = check_interval_s
        self.hits = 0
        self.misses = 0
        self._datasets: dict[int, _DatasetTexts] = {}
        self._lock = threading.Lock()

    def texts(self, session: Session, dataset_id: int, ids: Sequence[int]) -> dict[int, Text]:
        """id -> (external_id, prompt, answer) for every id (ids must exist)."""
        if self.max_bytes <= 0:
            return dataset_store.problems_by_ids(session, ids)
        entry = self._fresh_entry(session, dataset_id)
        cached = self.lookup(dataset_id, ids)
        # With check_interval_s = 0 the check is due again at once: then read every id.
        out, missing = cached.found, list(ids) if cached.check_due else cached.missing
        if missing:
            self.misses += len(missing)
            generation = entry.generation
            fetched = dataset_store.problems_by_ids(session, missing)
            out.update(fetched)
            self._store(entry, generation, fetched)
        return out

    def lookup(self, dataset_id: int, ids: Sequence[int]) -> Lookup:
        """What the cache holds for ``ids``, without database access (the event loop may call
        it). When the dataset's version check is due, nothing is served (``check_due``): the
        caller goes through texts(), which checks, once per interval."""
        entry = self._datasets.get(dataset_id)
        if entry is None or time.monotonic() - entry.checked_at >= self.check_interval_s:
            return Lookup({}, [], check_due=True)
        texts = entry.texts
        found: dict[int, Text] = {}
        missing: list[int] = []
        for pid in ids:
            text = texts.get(pid)
            if text is None:
                missing.append(pid)
            else:
                found[pid] = text
        self.hits += len(found)
        return Lookup(found, missing)

    def prefill(
        self, session: Session, dataset_id: int, pace: Callable[[], bool] = _brief_pause
    ) -> int:
        """Read the dataset's texts in id order into the cache until PREFILL_SHARE of the
        budget is used; returns how many were stored. For a background thread: ``pace()``
        runs before each chunk, with no transaction open (the service waits there until no
        request is in flight), and stops the prefill by returning False; it also stops when
        the dataset is invalidated meanwhile."""
        if self.max_bytes <= 0:
            return 0
        entry = self._fresh_entry(session, dataset_id)
        session.rollback()  # no transaction held while pace() waits
        generation, after, stored = entry.generation, 0, 0
        while self.nbytes < PREFILL_SHARE * self.max_bytes and entry.generation == generation:
            if not pace():
                break
            fetched = dataset_store.problem_texts_after(session, dataset_id, after, PREFILL_CHUNK)
            session.rollback()  # end the read transaction: no snapshot held between chunks
            if not fetched:
                break
            after = max(fetched)
            stored += len(fetched)
            self._store(entry, generation, fetched, evict=False)
        return stored

    def invalidate(self, dataset_id: int) -> None:
        """Drop a dataset's entries (its problems were overwritten by this process)."""
        with self._lock:
            entry = self._datasets.get(dataset_id)
            if entry is not None:
                self._clear(entry)
                entry.checked_at = float("-inf")  # re-read the version on next use

    def __len__(self) -> int:
        """Texts held, all datasets together."""
        return sum(len(e.texts) for e in self._datasets.values())

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._datasets.values())

    def _fresh_entry(self, session: Session, dataset_id: int) -> _DatasetTexts:
        entry = self._datasets.get(dataset_id)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < self.check_interval_s:
            return entry
        version = dataset_store.content_version(session, dataset_id)
        with self._lock:
            entry = self._datasets.get(dataset_id)
            if entry is None:
                entry = self._datasets[dataset_id] = _DatasetTexts(version, now)
            elif version != entry.content_version:
                self._clear(entry)
                entry.content_version = version
            entry.checked_at = now
        return entry

    def _store(
        self, entry: _DatasetTexts, generation: int, fetched: dict[int, Text], evict: bool = True
    ) -> None:
        with self._lock:
            if entry.generation != generation:
                return  # invalidated while we read: these rows may predate the overwrite
            for pid, text in fetched.items():
                if pid not in entry.texts:
                    entry.texts[pid] = text
                    entry.nbytes += _cost(text)
            if evict:
                self._evict(entry)

    def _evict(self, entry: _DatasetTexts) -> None:
        excess = self.nbytes - self.max_bytes
        if excess <= 0:
            return
        texts = entry.texts
        while excess > 0 and texts:
            oldest = next(iter(texts))
            cost = _cost(texts.pop(oldest))
            entry.nbytes -= cost
            excess -= cost

    @staticmethod
    def _clear(entry: _DatasetTexts) -> None:
        entry.texts = {}
        entry.nbytes = 0
        entry.generation += 1
