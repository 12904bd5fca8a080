"""Services: orchestrate repositories and the in-memory indexes. They never commit."""
