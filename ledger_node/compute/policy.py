"""Output policy: what a compute-to-data job may return (docs/compute.md, `spec.policy`).

A size cap and, for tables, k-anonymity by group size: every row's ``group_column`` must
be an integer of at least ``min_group``, so a per-customer table cannot leave the node.
"""
from __future__ import annotations

import csv
import io

from pydantic import BaseModel, ConfigDict, Field


class PolicyError(ValueError):
    """The output breaks the job's output policy; the message says how."""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_output_bytes: int = Field(ge=1)
    min_group: int | None = Field(default=None, ge=1)
    group_column: str = "customers"


def check(data: bytes, media_type: str, policy: Policy | None) -> None:
    """Raise PolicyError unless `data` may be returned under `policy`."""
    if policy is None:
        return
    if len(data) > policy.max_output_bytes:
        raise PolicyError(f"the output policy refused the output: {len(data)} bytes is more than its "
                          f"max_output_bytes {policy.max_output_bytes}")
    if policy.min_group is None:
        return
    if media_type != "text/csv":
        raise PolicyError(f"the output policy refused the output: min_group applies to text/csv tables and the "
                          f"bundle returns {media_type}")
    _check_groups(data, policy.min_group, policy.group_column)


def _check_groups(data: bytes, min_group: int, column: str) -> None:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        if column not in (reader.fieldnames or []):
            raise PolicyError(f"the output policy refused the output: the table has no {column!r} column "
                              "giving each row's group size")
        for line, row in enumerate(reader, start=2):
            value = (row.get(column) or "").strip()
            if not value.isdigit() or int(value) < min_group:  # the value is not quoted: it is the run's data
                raise PolicyError(f"the output policy refused the output: row {line}'s {column} is not a whole "
                                  f"number of at least {min_group}; each row must aggregate at least {min_group}")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PolicyError(f"the output policy refused the output: it is not a readable CSV table ({exc})") from None
