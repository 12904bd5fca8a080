"""The `paced` command line: main.py dispatches; each module holds one group of commands."""
