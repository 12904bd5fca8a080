"""Rooms a newcomer can read: no module of trainer_client over 300 lines, no class over 200.

A file past the limit holds more than one idea; a class past it (the 470-line Trainer this
replaced) hides a loop inside its methods. Split by what the parts do, not by line count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trainer_client"
MAX_FILE_LINES = 300
MAX_CLASS_LINES = 200


def python_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def class_spans(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines from its first decorator to its last line) of every class."""
    spans = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans.append((node.name, (node.end_lineno or node.lineno) - first + 1))
    return spans


def test_the_walk_sees_the_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in python_files()}
    assert {"client.py", "trainer/loop.py", "tasks/toy.py"} <= names


def test_no_file_in_trainer_client_is_over_300_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_class_in_trainer_client_is_over_200_lines():
    long = {
        f"{p.relative_to(ROOT)}::{name}": n
        for p in python_files()
        for name, n in class_spans(p)
        if n > MAX_CLASS_LINES
    }
    assert long == {}


def test_a_class_span_counts_decorators_and_the_whole_body(tmp_path):
    source = "@dataclass\nclass A:\n    x: int = 0\n\n    def f(self):\n        return 1\n"
    path = tmp_path / "a.py"
    path.write_text(source, encoding="utf-8")
    assert class_spans(path) == [("A", 6)]
