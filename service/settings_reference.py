"""docs/settings.md, generated from the Settings class: `python -m service.settings_reference`
writes it; tests/service/test_settings_reference.py checks that the file is what this prints."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from service.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
HEADER = """# Settings reference

Every setting of the service, read from the environment (`PACED_` + the name in capitals) or
from `Settings(...)` when the app is built in Python (`create_app(settings)`). Generated from
`service/settings.py` by `python -m service.settings_reference`: edit the descriptions there.

| variable | type | default | what it does |
|---|---|---|---|
"""


def _type(annotation: object) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("NoneType", "None")
    return text.replace(" | ", " or ")  # a bare | would split the table cell


def _default(value: object) -> str:
    if value is PydanticUndefined:
        return "(required)"
    return "unset" if value is None else f"`{value}`"


def render() -> str:
    rows = [
        f"| `PACED_{name.upper()}` | {_type(field.annotation)} | {_default(field.default)} "
        f"| {field.description or ''} |"
        for name, field in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n"


def main() -> None:
    DOCS.write_text(render())
    print(f"wrote {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
