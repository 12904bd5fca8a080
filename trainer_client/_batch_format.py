"""A batch's items, typed and cheap: the client's hot path.

A trainer draws a batch every step. Building 512 pydantic models costs several milliseconds
(microseconds per item), more than everything the service does for the draw, so a batch item
is a plain slotted class that keeps the model API callers use (attributes, model_dump(),
model_extra, equality) and validates its input in one pydantic-core pass over the whole body:

- the columnar format (`application/vnd.paced.batch-columns+json`, asked for by Accept): one
  list per field, validated as lists of primitives straight from the bytes;
- the row format (`application/json`, what the service sends any client that does not ask,
  and what older services always send): validated as a list of TypedDicts from the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired

from pydantic import ConfigDict, GetCoreSchemaHandler, TypeAdapter, with_config
from pydantic_core import core_schema
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

BATCH_COLUMNS = "application/vnd.paced.batch-columns+json"
FIELDS = ("problem_id", "prompt", "answer", "pass_rate", "weight", "loss_weight", "source")


class BatchItem:
    """One problem of a batch. Multiply its distillation loss by `loss_weight` (1 in
    proportional mode); `source` only with a fill: "drawn", "fill_unseen" or "fill_uniform".
    Fields a newer service adds are kept in `model_extra`."""

    # No dict per item unless it has extra fields: a batch of 4,096 items otherwise made
    # 8,192 objects for the garbage collector to track and sweep, not 4,096.
    __slots__ = (*FIELDS, "_extra")

    problem_id: str
    prompt: str
    answer: str | None
    pass_rate: float | None
    weight: float
    loss_weight: float
    source: str | None

    def __init__(
        self,
        problem_id: str,
        prompt: str,
        answer: str | None,
        pass_rate: float | None,
        weight: float,
        loss_weight: float,
        source: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.problem_id = problem_id
        self.prompt = prompt
        self.answer = answer
        self.pass_rate = pass_rate
        self.weight = weight
        self.loss_weight = loss_weight
        self.source = source
        self._extra = extra or None

    @property
    def model_extra(self) -> dict[str, Any]:
        """Fields a newer service sent that this client does not know (as pydantic keeps
        them): a dict, made on first use when there were none."""
        if self._extra is None:
            self._extra = {}
        return self._extra

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in FIELDS}, **(self._extra or {})}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchItem):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a pydantic model

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.model_dump().items())
        return f"BatchItem({fields})"

    @classmethod
    def model_validate(cls, value: Any) -> BatchItem:
        if isinstance(value, BatchItem):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"a batch item is a mapping, not {type(value).__name__}")
        return _row_item(dict(_ROW.validate_python(value)))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Inside a pydantic model (Batch): validated from a dict, serialised back to one.
        return core_schema.no_info_plain_validator_function(
            cls.model_validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda item: item.model_dump()
            ),
        )


@with_config(ConfigDict(extra="allow"))
class _Row(TypedDict):
    problem_id: str
    prompt: str
    answer: NotRequired[str | None]
    pass_rate: NotRequired[float | None]
    weight: float
    loss_weight: float
    source: NotRequired[str | None]


@with_config(ConfigDict(extra="allow"))
class _Rows(TypedDict):
    items: list[_Row]
    available: int
    sources: NotRequired[dict[str, int] | None]


@with_config(ConfigDict(extra="allow"))
class _Columns(TypedDict):
    problem_id: list[str]
    prompt: list[str]
    answer: list[str | None]
    pass_rate: list[float | None]
    weight: list[float]
    loss_weight: list[float]
    source: NotRequired[list[str] | None]


@with_config(ConfigDict(extra="allow"))
class _ColumnBody(TypedDict):
    columns: _Columns
    available: int
    sources: NotRequired[dict[str, int] | None]


_ROW = TypeAdapter(_Row)
_ROWS = TypeAdapter(_Rows)
_COLUMN_BODY = TypeAdapter(_ColumnBody)


def _row_item(row: dict[str, Any]) -> BatchItem:
    known = {name: row.pop(name, None) for name in FIELDS}
    return BatchItem(**known, extra=row)


def parse_batch(content: bytes, media_type: str) -> tuple[list[BatchItem], dict[str, Any]]:
    """(items, the body's other fields) of a batch response in either format."""
    if media_type.startswith(BATCH_COLUMNS):
        body: dict[str, Any] = dict(_COLUMN_BODY.validate_json(content))
        columns = body.pop("columns")
        known = [columns.pop(name) for name in FIELDS[:6]]
        lengths = {len(column) for column in known}
        source = columns.pop("source", None)
        if len(lengths) > 1 or (source is not None and len(source) not in lengths):
            raise ValueError("the columns of a batch differ in length")
        if source is not None:
            known.append(source)
        if columns:  # fields this client does not know: kept per item, as in the row format
            names = list(columns)
            width = len(FIELDS)
            padded = known if len(known) == width else [*known, [None] * len(known[0])]
            items = [
                # values[:width] is the 7 fields; mypy cannot count a slice's length.
                BatchItem(*values[:width], dict(zip(names, values[width:], strict=True)))  # type: ignore[call-arg]
                for values in zip(*padded, *columns.values(), strict=True)
            ]
        else:
            items = list(map(BatchItem, *known))
        return items, body
    rows: dict[str, Any] = dict(_ROWS.validate_json(content))
    return [_row_item(row) for row in rows.pop("items")], rows
