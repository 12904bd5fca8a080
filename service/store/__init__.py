"""Repositories: the only place SQL is written. Functions take a Session and never commit."""
