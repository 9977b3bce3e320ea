"""The `gridmart` command line: one Typer sub-app per area, registered in main.py."""
