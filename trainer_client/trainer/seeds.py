"""Seeds derived from (run seed, step, purpose): independent streams, stable across resumes.

Deriving instead of drawing from a global generator means step 37 of a resumed run asks the
service for exactly the batch step 37 of an uninterrupted run would have asked for.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (e.g. derive_seed(seed, step, "batch"))."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1
