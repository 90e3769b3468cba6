"""Delta-apply function of the benchmark project: keeps the data, takes the counter.

Deliberately cheap: the benchmark measures what cogment adds, not user code.
"""

from __future__ import annotations

from typing import Any


def apply_delta(previous: Any, delta: Any) -> Any:
    previous.n = delta.n
    return previous
