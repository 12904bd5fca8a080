"""docs/settings.md lists every setting, as service/settings.py describes it."""

from __future__ import annotations

from service.settings import Settings
from service.settings_reference import DOCS, render


def test_the_reference_is_what_the_settings_class_generates():
    assert DOCS.read_text() == render(), "run: python -m service.settings_reference"


def test_every_setting_is_listed_with_a_description():
    text = DOCS.read_text()
    for name, field in Settings.model_fields.items():
        assert f"`PACED_{name.upper()}`" in text, name
        assert field.description, f"{name} has no description"
