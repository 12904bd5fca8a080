"""Put the service into the server's wheel from the repository root (its home in the tree).

The `service` package and `migrations/` stay at the repository root, where the tests, the
Alembic CLI and the Dockerfile find them; a wheel carries them as `service/` and
`service/_migrations/` (service/migrate.py looks there first). Editable installs copy
nothing: `dev-mode-dirs` puts the repository root on sys.path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

REPOSITORY = Path(__file__).resolve().parents[2]
SKIPPED = {"__pycache__"}


def _files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and not SKIPPED.intersection(path.parts) and path.suffix != ".pyc"
    )


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        included = build_data["force_include"]
        for source, target in (("service", "service"), ("migrations", "service/_migrations")):
            root = REPOSITORY / source
            for path in _files(root):
                included[str(path)] = f"{target}/{path.relative_to(root).as_posix()}"
