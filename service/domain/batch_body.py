"""A batch response's bytes, assembled from pre-encoded text fragments (domain/text_columns.py)
and the draw's number arrays: byte for byte what orjson.dumps of the schema's dict writes
(domain/curriculum.batch_items / batch_columns, which stay the reference; tests compare the
two), without building a dict per item or encoding a string per request.

Rows:    {"items":[{<fragment>"pass_rate":p,"weight":w,"loss_weight":l},...],"available":n}
Columns: {"columns":{"problem_id":[...],...,"loss_weight":[...]},"available":n}
(with a fill policy, "source" per item / column and "sources" after "available").
"""

from __future__ import annotations

import numpy as np
import orjson

from service.curriculum import draws
from service.domain.text_columns import KEY_ID, gather, value_bounds

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# The constant parts of a row, laid out at the start of each request's scratch buffer.
_OPEN, _PASS_RATE, _WEIGHT, _LOSS_WEIGHT, _SOURCE, _CLOSE = (
    b"{",
    b'"pass_rate":',
    b',"weight":',
    b',"loss_weight":',
    b',"source":',
    b"},",
)
_CONSTANTS = _OPEN + _PASS_RATE + _WEIGHT + _LOSS_WEIGHT + _SOURCE + _CLOSE
_AT = np.cumsum([0, len(_OPEN), len(_PASS_RATE), len(_WEIGHT), len(_LOSS_WEIGHT), len(_SOURCE)])
_LEN = np.array([len(_OPEN), len(_PASS_RATE), len(_WEIGHT), len(_LOSS_WEIGHT), len(_SOURCE)])


def _numbers(values: np.ndarray) -> bytes:
    """A float column as orjson writes the list (NaN as null), brackets included."""
    return orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=_NUMPY)


def _source_names(result: draws.Draw) -> list[str] | None:
    if result.sources is None:
        return None
    return draws.source_names(result)


def _tail(result: draws.Draw, names: list[str] | None) -> bytes:
    tail = b',"available":' + str(int(result.available)).encode()
    if names is not None:
        tail += b',"sources":' + orjson.dumps(draws.source_counts(result))
    return tail + b"}"


def columns_body(buffer: np.ndarray, rows: np.ndarray, result: draws.Draw) -> bytes:
    """The columnar format; rows: each item's fragment offsets (all loaded)."""
    starts, ends = value_bounds(rows)
    text = gather(buffer, np.concatenate(starts), np.concatenate(ends)).tobytes()
    cut = np.cumsum([int((e - s).sum()) for s, e in zip(starts, ends, strict=True)])
    ids, prompts, answers = text[: cut[0]], text[cut[0] : cut[1]], text[cut[1] : cut[2]]
    names = _source_names(result)
    parts = [
        b'{"columns":{"problem_id":[',
        ids[:-1],  # each value carries its comma: drop the last one
        b'],"prompt":[',
        prompts[:-1],
        b'],"answer":[',
        answers[:-1],
        b'],"pass_rate":',
        _numbers(result.pass_rates),
        b',"weight":',
        _numbers(result.weights),
        b',"loss_weight":',
        _numbers(result.loss_weights),
    ]
    if names is not None:
        parts += [b',"source":', orjson.dumps(names)]
    parts += [b"}", _tail(result, names)]
    return b"".join(parts)


def _split(encoded: bytes, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the comma-separated values of an encoded list (brackets
    stripped: ``encoded`` sits at ``base`` in the scratch buffer). The values are numbers
    or source names: no comma inside one."""
    commas = np.flatnonzero(np.frombuffer(encoded, dtype=np.uint8) == ord(","))
    starts = np.concatenate(([0], commas + 1)) + base
    ends = np.concatenate((commas, [len(encoded)])) + base
    return starts, ends - starts


def rows_body(buffer: np.ndarray, rows: np.ndarray, result: draws.Draw) -> bytes:
    """The row format (one object per item); rows: each item's fragment offsets."""
    n = len(rows)
    names = _source_names(result)
    if n == 0:
        return b'{"items":[]' + _tail(result, names)
    fragment_starts = rows[:, 0] - len(KEY_ID)
    fragments = gather(buffer, fragment_starts, rows[:, 3])
    columns = [_numbers(result.pass_rates), _numbers(result.weights)]
    columns.append(_numbers(result.loss_weights))
    if names is not None:
        columns.append(orjson.dumps(names))
    # Scratch: the fragments, the constants, then each column's values without brackets.
    scratch_parts = [fragments.tobytes(), _CONSTANTS]
    base = len(fragments) + len(_CONSTANTS)
    values = []
    for encoded in columns:
        inner = encoded[1:-1]
        values.append(_split(inner, base))
        scratch_parts.append(inner)
        base += len(inner)
    scratch = np.frombuffer(b"".join(scratch_parts), dtype=np.uint8)
    constants = len(fragments) + _AT
    sizes = rows[:, 3] - fragment_starts
    # Per item: { fragment "pass_rate": p ,"weight": w ,"loss_weight": l [,"source": s] },
    pieces: list[tuple[np.ndarray | int, np.ndarray | int]] = [
        (constants[0], _LEN[0]),
        (np.cumsum(sizes) - sizes, sizes),
        (constants[1], _LEN[1]),
        values[0],
        (constants[2], _LEN[2]),
        values[1],
        (constants[3], _LEN[3]),
        values[2],
    ]
    if names is not None:
        pieces += [(constants[4], _LEN[4]), values[3]]
    pieces.append((constants[4] + _LEN[4], len(_CLOSE)))
    starts = np.empty((n, len(pieces)), dtype=np.int64)
    lengths = np.empty((n, len(pieces)), dtype=np.int64)
    for column, (start, length) in enumerate(pieces):
        starts[:, column] = start
        lengths[:, column] = length
    flat_starts = starts.ravel()
    items = gather(scratch, flat_starts, flat_starts + lengths.ravel()).tobytes()
    return b'{"items":[' + items[:-1] + b"]" + _tail(result, names)
