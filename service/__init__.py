"""paced: the PACED curriculum service."""

__version__ = "0.1.0"
