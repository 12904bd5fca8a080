"""Bearer tokens: one admin token from the settings, and one token per run.

Run tokens are random, shown once at run creation and stored only as SHA-256 digests;
comparisons use ``hmac.compare_digest`` so timing does not reveal how much of a token matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

RUN_TOKEN_PREFIX = "paced_run_"


def new_run_token() -> str:
    return RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
