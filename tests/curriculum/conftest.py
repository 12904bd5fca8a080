import sys
from pathlib import Path

# Lets the tests import the sibling helper module `sampling_stats`.
sys.path.insert(0, str(Path(__file__).parent))
