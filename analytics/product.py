"""What every analytics product provides, so the registry, CLI and marketplace treat them alike.

A product knows its input file format (and how to reject a bad file), how to generate
realistic training data in that format, how to fit its pipeline, how to measure it on
a held-out set from another seed (unseen customers / transformers / assets), and how
to turn a fitted model plus an input frame into its output table.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Offset added to the training seed for the held-out set: another seed means other
#: customers (ids are drawn from the seed) and other weather.
HOLDOUT_SEED_OFFSET = 1_000


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "description": self.description}


class Product(ABC):
    """One analytics product. Subclasses set the class attributes and the five methods."""

    name: str
    kind: str                 # "tool" (model to download / call / retrain) or "application" (remote-run)
    title: str
    summary: str
    version: str = "1.0.0"
    input_format: str
    input_columns: tuple[Column, ...]
    output_columns: tuple[Column, ...]
    default_size: int         # entities generated for a default training run
    size_unit: str

    @abstractmethod
    def generate(self, size: int, seed: int) -> pd.DataFrame:
        """Realistic labelled data in the input format (what `generate` writes as CSV)."""

    @abstractmethod
    def read(self, path: str | Path) -> pd.DataFrame:
        """Load and validate an input file; raise MalformedFileError naming column and row."""

    @abstractmethod
    def fit(self, frame: pd.DataFrame, seed: int) -> tuple[object, dict]:
        """Fitted model and what the card should say about it (threshold, features, ...)."""

    @abstractmethod
    def evaluate(self, model, card: dict, size: int, seed: int) -> dict:
        """Metrics on a freshly generated held-out set drawn with ``seed``."""

    @abstractmethod
    def predict(self, model, card: dict, frame: pd.DataFrame) -> pd.DataFrame:
        """Output table (``output_columns``) for a validated input frame."""

    def describe(self) -> dict:
        """Registry entry as the marketplace lists it."""
        return {
            "name": self.name, "kind": self.kind, "title": self.title, "summary": self.summary,
            "version": self.version,
            "input_schema": {"format": self.input_format, "columns": [c.as_dict() for c in self.input_columns]},
            "output_schema": {"format": "csv", "columns": [c.as_dict() for c in self.output_columns]},
        }
