"""Problems' text (external id, prompt, answer) held in memory for the batch hot path.

A batch of 512 needs the text of 512 problems; reading it from the database cost more than
everything else a batch does, and so did 512 lookups into a dict of a million entries. So
each dataset's texts live in one TextColumns (domain/text_columns.py): pre-encoded JSON
fragments in numpy arrays, addressed by the same slots as the sampling index, from which a
response is assembled without a Python object per item (domain/batch_body.py).

Filling: when a process first uses a dataset, prefill() reads its texts in id order in the
background (a sequential scan, ~20x cheaper per row than random reads), up to PREFILL_SHARE
of the budget; draws that find texts missing read them (complete()) and keep them too. The
service runs each prefill chunk only while no request is in flight (domain/activity.py):
the scan holds the GIL, and beside requests it slowed them down.

Staleness: problems are immutable except through an upsert that overwrites them. Such an
upsert bumps ``datasets.content_version``; this process drops the dataset's texts right
after its own commit, and every process re-reads the version at most ``check_interval_s``
apart (the same bound as index syncs), dropping the texts when it moved. Dropping replaces
the TextColumns object, so a read that raced it lands in the discarded one.

Memory: ``max_bytes`` bounds what a dataset's columns hold (fragments, ids, offsets). When
a draw's texts would not fit, the columns start over empty and fill again (a frontier that
moves is followed, at the price of a refill); a budget too small for the dataset's ids alone
serves every draw from the database, as ``max_bytes = 0`` (no cache) does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from service.domain.text_columns import SLOT_BYTES, Text, TextColumns
from service.store import datasets as dataset_store

__all__ = ["Located", "PromptCache", "Text"]

# prefill() stops here, leaving room for what draws bring in.
PREFILL_SHARE = 0.8
# Rows per prefill chunk: a request arriving during a chunk shares the GIL with it until the
# chunk ends, so a chunk must be short (200 rows: p50 0.6-0.8 ms at N = 1e6 on the bench
# machine, 1.6 ms at 500), while the per-query cost (~0.3 ms) stays a minor part.
PREFILL_CHUNK = 200


def _brief_pause() -> bool:
    time.sleep(0.001)
    return True


@dataclass
class _DatasetTexts:
    dataset_id: int
    content_version: int
    checked_at: float
    columns: TextColumns
    generation: int = 0  # bumped each time the columns are replaced
    too_small: bool = False  # the budget would not hold the dataset's ids: no caching


@dataclass(frozen=True)
class Located:
    """Where a batch's fragments are: rows[i] are problem i's offsets into buffer."""

    buffer: np.ndarray
    rows: np.ndarray


class PromptCache:
    def __init__(self, max_bytes: int, check_interval_s: float) -> None:
        self.max_bytes = max_bytes
        self.check_interval_s = check_interval_s
        self.hits = 0
        self.misses = 0
        self._datasets: dict[int, _DatasetTexts] = {}
        self._lock = threading.Lock()

    # ---- the event loop's side: memory only ------------------------------------------------

    def located(
        self, dataset_id: int, problem_ids: np.ndarray, slots: np.ndarray | None = None
    ) -> Located | None:
        """The batch's fragments when every one is held and the dataset's version check is
        not due; else None (the caller goes through complete(), in the threadpool)."""
        entry = self._datasets.get(dataset_id)
        if entry is None or time.monotonic() - entry.checked_at >= self.check_interval_s:
            return None
        buffer, rows = entry.columns.locate(problem_ids, slots)
        if len(rows) and int(rows[:, 3].min()) == 0:
            return None
        self.hits += len(rows)
        return Located(buffer, rows)

    # ---- database work (threadpool) ----------------------------------------------------------

    def complete(
        self,
        session: Session,
        dataset_id: int,
        problem_ids: np.ndarray,
        slots: np.ndarray | None = None,
    ) -> Located:
        """The batch's fragments, reading (and keeping) the texts not held."""
        problem_ids = np.asarray(problem_ids, dtype=np.int64)
        if self.max_bytes <= 0:
            return self._uncached(session, problem_ids)
        entry = self._fresh_entry(session, dataset_id)
        if entry.too_small:
            return self._uncached(session, problem_ids)
        columns = entry.columns
        missing = columns.missing(problem_ids)
        if len(missing):
            if int(missing.max()) > columns.max_id:  # problems added since the ids were read
                after = columns.max_id
                columns.add_ids(dataset_store.problem_ids_after(session, dataset_id, after))
            unique = np.unique(missing).tolist()
            fetched = dataset_store.problems_by_ids(session, unique)
            self.misses += len(missing)
            self._keep(entry, columns, unique, [fetched[i] for i in unique])
            columns = entry.columns
        buffer, rows = columns.locate(problem_ids, slots)
        if len(rows) and int(rows[:, 3].min()) == 0:  # dropped meanwhile: read them all
            return self._uncached(session, problem_ids, count=False)
        self.hits += len(problem_ids) - len(missing)
        return Located(buffer, rows)

    def texts(self, session: Session, dataset_id: int, ids: Sequence[int]) -> dict[int, Text]:
        """id -> (external_id, prompt, answer) for every id (ids must exist)."""
        if not len(ids):
            return {}
        problem_ids = np.asarray(ids, dtype=np.int64)
        if self.max_bytes <= 0:
            self.misses += len(problem_ids)
            return dataset_store.problems_by_ids(session, ids)
        entry = self._fresh_entry(session, dataset_id)
        found = entry.columns.decode(problem_ids)
        wanted = [i for i in dict.fromkeys(problem_ids.tolist()) if i not in found]
        self.hits += len(problem_ids) - len(wanted)
        if wanted:
            self.misses += len(wanted)
            fetched = dataset_store.problems_by_ids(session, wanted)
            found.update(fetched)
            if not entry.too_small:
                self._keep(entry, entry.columns, wanted, [fetched[i] for i in wanted])
        return found

    def prefill(
        self, session: Session, dataset_id: int, pace: Callable[[], bool] = _brief_pause
    ) -> int:
        """Read the dataset's texts in id order until PREFILL_SHARE of the budget is used;
        returns how many were stored. For a background thread: ``pace()`` runs before each
        chunk, with no transaction open (the service waits there until no request is in
        flight), and stops the prefill by returning False; it also stops when the dataset's
        texts are dropped meanwhile."""
        if self.max_bytes <= 0:
            return 0
        entry = self._fresh_entry(session, dataset_id)
        if entry.too_small:
            return 0
        columns = entry.columns
        session.rollback()  # no transaction held while pace() waits
        after, stored = 0, 0
        # The budget is shared by every dataset's columns: the others' share is left alone.
        while columns is entry.columns and self.nbytes < PREFILL_SHARE * self.max_bytes:
            if not pace():
                break
            fetched = dataset_store.problem_texts_after(session, dataset_id, after, PREFILL_CHUNK)
            session.rollback()  # end the read transaction: no snapshot held between chunks
            if not fetched:
                break
            after = max(fetched)
            if after > columns.max_id:
                columns.add_ids(np.fromiter(fetched, np.int64, len(fetched)))
            ids = list(fetched)
            others = self.nbytes - columns.nbytes
            if columns.store(ids, [fetched[i] for i in ids], self.max_bytes - others) is None:
                break
            stored += len(ids)
        return stored

    def invalidate(self, dataset_id: int) -> None:
        """Drop a dataset's texts (its problems were overwritten by this process)."""
        with self._lock:
            entry = self._datasets.get(dataset_id)
            if entry is not None:
                self._replace_columns(entry)
                entry.checked_at = float("-inf")  # re-read the version on next use

    def generation(self, dataset_id: int) -> int | None:
        """Changes whenever the dataset's texts are dropped (None: not in use here)."""
        entry = self._datasets.get(dataset_id)
        return None if entry is None else entry.generation

    def __len__(self) -> int:
        """Texts held, all datasets together."""
        return sum(e.columns.loaded for e in self._datasets.values())

    @property
    def nbytes(self) -> int:
        return sum(e.columns.nbytes for e in self._datasets.values())

    # ---- internals ---------------------------------------------------------------------------

    def _uncached(self, session: Session, problem_ids: np.ndarray, count: bool = True) -> Located:
        """This batch's fragments in a throwaway TextColumns (the cache is off or too small)."""
        unique = np.unique(problem_ids)
        fetched = dataset_store.problems_by_ids(session, unique.tolist())
        if count:
            self.misses += len(problem_ids)
        columns = TextColumns()
        columns.add_ids(unique)
        columns.store(unique.tolist(), [fetched[i] for i in unique.tolist()])
        buffer, rows = columns.locate(problem_ids)
        return Located(buffer, rows)

    def _keep(
        self, entry: _DatasetTexts, columns: TextColumns, ids: list[int], texts: list[Text]
    ) -> None:
        """Store read texts in the dataset's columns, starting them over when full."""
        if columns is not entry.columns:
            return  # dropped while we read: these rows may predate the overwrite
        others = self.nbytes - columns.nbytes  # other datasets' share of the budget
        if columns.store(ids, texts, self.max_bytes - others) is None:
            with self._lock:
                if columns is not entry.columns:
                    return
                self._replace_columns(entry)
            entry.columns.store(ids, texts, self.max_bytes - others)

    def _fresh_entry(self, session: Session, dataset_id: int) -> _DatasetTexts:
        entry = self._datasets.get(dataset_id)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < self.check_interval_s:
            return entry
        version = dataset_store.content_version(session, dataset_id)
        with self._lock:
            entry = self._datasets.get(dataset_id)
            if entry is None:
                entry = self._datasets[dataset_id] = _DatasetTexts(
                    dataset_id, version, now, TextColumns()
                )
            elif version != entry.content_version:
                # Columns replaced since their last text (this process's own overwrite did
                # it already) hold nothing stale: replace only columns that hold texts.
                if entry.columns.loaded:
                    self._replace_columns(entry)
                entry.content_version = version
            entry.checked_at = now
        if entry.columns.n_ids == 0 and not entry.too_small:
            ids = dataset_store.problem_ids_after(session, dataset_id, 0)
            # Ids and offsets must leave at least half the budget to texts.
            entry.too_small = len(ids) * SLOT_BYTES > self.max_bytes // 2
            if not entry.too_small:
                entry.columns.add_ids(ids)
        return entry

    @staticmethod
    def _replace_columns(entry: _DatasetTexts) -> None:
        entry.columns = entry.columns.emptied()
        entry.generation += 1
