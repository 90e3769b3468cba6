"""`python -m cogment.orchestrator`: the same as `cogment orchestrator`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
