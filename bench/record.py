"""Run a benchmark command, passing its output through and appending its JSON rows to a
file (for bench/acceptance.py); exits with the command's status.

Run: python bench/record.py OUT.jsonl -- python bench/client.py ...
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    out, command = sys.argv[1], sys.argv[3:]
    with (
        open(out, "a") as file,
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            try:
                json.loads(line)
            except ValueError:
                continue  # not a row
            file.write(line)
            file.flush()
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
