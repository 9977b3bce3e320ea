"""What every audit returns: named checks with their evidence, so one renderer serves text, JSON and HTML."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    """One verifiable claim; `tx` (and `block`) point at the on-chain evidence."""

    name: str
    passed: bool
    detail: str = ""
    tx: str | None = None
    block: int | None = None


@dataclass
class Report:
    """The checks about one subject (a product, a licence, ...) plus the facts they rest on."""

    subject: str
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str = "", tx: str | None = None,
              block: int | None = None) -> Check:
        c = Check(name, bool(passed), detail, tx, block)
        self.checks.append(c)
        return c

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "passed": self.passed, "checks": [asdict(c) for c in self.checks],
                "facts": self.facts}
