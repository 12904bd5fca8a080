"""models.Outcome's rules over a whole list of outcomes in one pydantic-core pass (what
api_post_outcomes validates before its first chunk is sent)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, NotRequired, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from . import models


@with_config(ConfigDict(extra="allow"))  # fields a newer service knows are sent as given
class _OutcomeFields(TypedDict):
    problem_id: str
    attempts: Annotated[int, Field(ge=0)]
    successes: Annotated[int, Field(ge=0)]
    step: NotRequired[Annotated[int, Field(ge=0)] | None]
    errored: NotRequired[Annotated[int, Field(ge=0)]]


_OUTCOME_LIST: TypeAdapter[list[_OutcomeFields]] = TypeAdapter(list[_OutcomeFields])


def _checked_outcomes(
    outcomes: Iterable[models.Outcome | Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """models.Outcome's rules over the whole list in one pydantic-core pass (a model per
    outcome cost more than the service's ingest of it), as the dicts to send. A bad item
    raises the very error models.Outcome raises for it."""
    items = [o.model_dump(mode="json") if isinstance(o, BaseModel) else o for o in outcomes]
    try:
        checked = cast(list[dict[str, Any]], _OUTCOME_LIST.validate_python(items))
    except ValidationError:
        for item in items:
            models.Outcome.model_validate(item)
        raise
    for item in checked:
        item.setdefault("step", None)
        if item["successes"] > item["attempts"] or (
            item["attempts"] == 0 and not item.get("errored")
        ):
            models.Outcome.model_validate(item)  # raises: successes > attempts, or nothing
        if "errored" in item and not item["errored"]:
            del item["errored"]  # 0 is the default: the body stays what it was without it
    return checked
