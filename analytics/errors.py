"""Exceptions of the analytics package (it must not depend on ledger_node's errors)."""
from __future__ import annotations


class AnalyticsError(ValueError):
    """A product was asked to do something its inputs do not allow."""


class MalformedFileError(AnalyticsError):
    """An input file breaks its format; the message names the column and the row."""

    def __init__(self, path: str, column: str, row: int | None, problem: str):
        self.path, self.column, self.row, self.problem = str(path), column, row, problem
        where = f"column {column!r}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{self.path}: {where}: {problem}")
