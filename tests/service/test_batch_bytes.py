"""The batch response assembled from pre-encoded fragments (domain/batch_body.py over
domain/text_columns.py) is byte for byte orjson.dumps of the reference dict
(domain/curriculum.batch_items / batch_columns), whatever the texts, numbers and fill, and
whatever order the text slots were filled in."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum import draws
from service.domain.batch_body import columns_body, rows_body
from service.domain.curriculum import batch_columns, batch_items
from service.domain.text_columns import TextColumns

# orjson refuses lone surrogates (so does every database the service stores texts in).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
TRICKY = st.sampled_from(
    ['"', "\\", "\n\t\r", "\x00\x1f\x7f", "\u2028\u2029", "é漢字🙂", "</script>", "", " ", "null"]
)
TEXTS = st.one_of(TEXT, TRICKY)
NUMBER = st.floats(allow_nan=True, allow_infinity=True, width=64)
UNIT = st.one_of(st.floats(0, 1), st.just(float("nan")), st.just(-0.0), st.just(5e-324))


@st.composite
def batches(draw_from: st.DrawFn) -> tuple[draws.Draw, dict[int, tuple], list[int]]:
    """A draw over some of a dataset's problems, the dataset's texts by id, and the order
    in which the dataset's slots get filled."""
    n_dataset = draw_from(st.integers(1, 30))
    gaps = draw_from(st.lists(st.integers(1, 1000), min_size=n_dataset, max_size=n_dataset))
    ids = np.cumsum(gaps).astype(np.int64)  # ascending, as a dataset's ids are
    texts = {
        int(pid): (
            draw_from(TEXTS),
            draw_from(TEXTS),
            draw_from(st.one_of(st.none(), TEXTS)),
        )
        for pid in ids
    }
    chosen = draw_from(st.lists(st.sampled_from(ids.tolist()), unique=True, max_size=n_dataset))
    n = len(chosen)
    floats = st.lists(NUMBER, min_size=n, max_size=n)
    with_fill = draw_from(st.booleans())
    result = draws.Draw(
        problem_ids=np.array(chosen, dtype=np.int64),
        weights=np.array(draw_from(floats), dtype=np.float64),
        loss_weights=np.array(draw_from(floats), dtype=np.float64),
        pass_rates=np.array(draw_from(st.lists(UNIT, min_size=n, max_size=n)), np.float64),
        available=draw_from(st.integers(0, 2**53)),
        sources=(
            np.array(draw_from(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int8)
            if with_fill
            else None
        ),
    )
    fill_order = draw_from(st.permutations(ids.tolist()))
    return result, texts, fill_order


def filled_columns(texts: dict[int, tuple], order: list[int], chunk: int) -> TextColumns:
    columns = TextColumns()
    columns.add_ids(np.array(sorted(texts), dtype=np.int64))
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        columns.store(part, [texts[i] for i in part])
    return columns


def reference(result: draws.Draw, texts: dict[int, tuple], columnar: bool) -> bytes:
    ordered = [texts[int(pid)] for pid in result.problem_ids]
    build = batch_columns if columnar else batch_items
    return orjson.dumps(build(result, ordered))


def assembled(columns: TextColumns, result: draws.Draw, columnar: bool) -> bytes:
    buffer, rows = columns.locate(result.problem_ids)
    assert (rows[:, 3] > 0).all()
    return (columns_body if columnar else rows_body)(buffer, rows, result)


@settings(max_examples=300, deadline=None)
@given(batches(), st.integers(1, 7))
def test_assembled_bytes_equal_orjson_of_the_reference_dict(batch, chunk):
    result, texts, order = batch
    columns = filled_columns(texts, order, chunk)
    for columnar in (False, True):
        assert assembled(columns, result, columnar) == reference(result, texts, columnar)


@settings(max_examples=100, deadline=None)
@given(batches(), st.integers(1, 7))
def test_decode_gives_back_the_stored_texts(batch, chunk):
    result, texts, order = batch
    columns = filled_columns(texts, order[: len(order) // 2 + 1], chunk)
    held = set(order[: len(order) // 2 + 1])
    asked = np.array(sorted(texts), dtype=np.int64)
    assert columns.decode(asked) == {i: texts[i] for i in held}
    assert sorted(columns.missing(asked).tolist()) == sorted(set(texts) - held)


def test_the_sampling_index_slots_are_used_only_when_they_match():
    texts = {i: (f"p{i}", f"prompt {i}", str(i)) for i in (3, 5, 9)}
    columns = filled_columns(texts, [9, 3, 5], 2)
    ids = np.array([9, 3], dtype=np.int64)
    good = columns.locate(ids, np.array([2, 0]))[1]
    wrong = columns.locate(ids, np.array([0, 1]))[1]  # slots of another id order: searched
    assert (good == wrong).all()
    assert columns.decode(ids) == {9: texts[9], 3: texts[3]}
    unknown = columns.locate(np.array([4, 9], dtype=np.int64))[1]
    assert unknown[0].tolist() == [0, 0, 0, 0] and unknown[1, 3] > 0


def test_store_skips_held_repeated_and_unknown_ids_and_respects_the_budget():
    columns = TextColumns()
    columns.add_ids(np.array([1, 2, 3], dtype=np.int64))
    text = ("p1", "x" * 50, None)
    added = columns.store([1, 1, 7], [text, ("other", "y", "z"), ("p7", "", "")])
    assert added is not None and added > 0 and columns.loaded == 1
    assert columns.store([1], [("p1", "changed", None)]) == 0  # a slot never changes
    assert columns.decode(np.array([1]))[1] == text
    before = columns.nbytes
    assert columns.store([2], [("p2", "z" * 500, None)], max_bytes=before + 10) is None
    assert columns.nbytes == before and columns.loaded == 1
    columns.add_ids(np.array([2, 3, 4], dtype=np.int64))  # only 4 is new
    assert columns.n_ids == 4 and columns.max_id == 4
    emptied = columns.emptied()
    assert emptied.loaded == 0 and emptied.n_ids == 4
    assert emptied.missing(np.array([1, 4])).tolist() == [1, 4]


def test_slots_filled_concurrently_give_the_same_bytes_and_readers_see_whole_rows():
    rng = np.random.default_rng(0)
    n = 3000
    ids = np.cumsum(rng.integers(1, 5, n)).astype(np.int64)
    texts = {
        int(i): (f"p{i}", 'é"\\\n' * int(rng.integers(0, 6)) + f"q{i}", None if i % 3 else "a")
        for i in ids
    }
    columns = TextColumns()
    columns.add_ids(ids[: n // 3])  # the rest of the ids arrive while texts are stored
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(seed: int) -> None:
        try:
            order = np.random.default_rng(seed).permutation(ids)
            for start in range(0, n, 97):
                part = order[start : start + 97].tolist()
                columns.store(part, [texts[i] for i in part])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    def grower() -> None:
        for start in range(n // 3, n, 211):
            columns.add_ids(ids[start : start + 211])

    def reader() -> None:
        local = np.random.default_rng(99)
        try:
            while not done.is_set():
                asked = local.choice(ids, 64, replace=False)
                found = columns.decode(asked)
                assert all(found[i] == texts[i] for i in found)  # a row is whole or absent
        except BaseException as error:
            errors.append(error)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    workers = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
    workers.append(threading.Thread(target=grower))
    for thread in readers + workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert not errors, errors[0]
    # Every id was stored by at least one writer after its id arrived, or missed: fill in
    # what the races left (as draws do), then every slot holds its own text once.
    missing = columns.missing(ids).tolist()
    columns.store(missing, [texts[i] for i in missing])
    assert columns.loaded == n
    sequential = filled_columns(texts, ids.tolist(), 500)
    pick = rng.choice(ids, 512, replace=False)
    result = draws.Draw(
        problem_ids=pick,
        weights=rng.random(512),
        loss_weights=np.ones(512),
        pass_rates=np.where(rng.random(512) < 0.2, np.nan, rng.random(512)),
        available=n,
        sources=rng.integers(0, 3, 512).astype(np.int8),
    )
    for columnar in (False, True):
        expected = reference(result, texts, columnar)
        assert assembled(columns, result, columnar) == expected
        assert assembled(sequential, result, columnar) == expected


@pytest.mark.parametrize("columnar", [False, True])
def test_an_empty_draw_is_the_reference_empty_body(columnar):
    result = draws.Draw(
        problem_ids=np.empty(0, np.int64),
        weights=np.empty(0),
        loss_weights=np.empty(0),
        pass_rates=np.empty(0),
        available=0,
        sources=np.empty(0, np.int8),
    )
    columns = TextColumns()
    assert assembled(columns, result, columnar) == reference(result, {}, columnar)


@pytest.mark.parametrize("held", [50, 2000])  # few texts held: zeroed; most: fresh zeros
def test_emptied_columns_take_the_slots_over_and_the_old_ones_hold_nothing(held):
    texts = {i: (f"p{i}", f"prompt {i}", None) for i in range(1, 2001)}
    old = filled_columns(texts, list(texts)[:held], 300)
    fresh = old.emptied()
    assert fresh.n_ids == 2000 and fresh.loaded == 0
    assert fresh.missing(np.array([1, 50, 2000])).tolist() == [1, 50, 2000]
    # The old columns are sealed: empty for whoever still holds them, and they store nothing.
    assert old.decode(np.array([1, 50])) == {}
    assert old.store([3], [texts[3]]) == 0
    old.add_ids(np.array([5000], dtype=np.int64))
    assert fresh.max_id == 2000
    # The fresh ones fill and grow as any.
    fresh.add_ids(np.array([2001, 2005], dtype=np.int64))
    fresh.store([2005, 7], [("p2005", "new", "x"), ("p7", "overwritten", None)])
    assert fresh.decode(np.array([2005, 7, 8])) == {
        2005: ("p2005", "new", "x"),
        7: ("p7", "overwritten", None),
    }
    again = fresh.emptied()
    assert again.n_ids == 2002 and again.missing(np.array([7, 2005])).tolist() == [7, 2005]
    again.store(list(texts), list(texts.values()))
    result = draws.Draw(
        problem_ids=np.array([7, 1999, 3], dtype=np.int64),
        weights=np.ones(3),
        loss_weights=np.ones(3),
        pass_rates=np.full(3, 0.5),
        available=3,
        sources=None,
    )
    for columnar in (False, True):
        assert assembled(again, result, columnar) == reference(result, texts, columnar)
