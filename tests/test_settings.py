"""cogment.settings, the runtime types of cog_settings, stand apart from the cogment.yaml
parser: importing cogment, its client or its orchestrator loads neither the parser nor YAML."""

from __future__ import annotations

import subprocess
import sys


def test_runtime_settings_do_not_load_the_parser() -> None:
    code = (
        "import sys\n"
        "import cogment, cogment.client, cogment.settings\n"
        "from cogment.settings import (ActorClass, ActorClassList, DatalogSettings,\n"
        "    EnvironmentSettings, TrialSettings, make_default_trial_params_from_dict)\n"
        "loaded = sorted(m for m in ('yaml', 'cogment.cogment_yaml', 'cogment.generate')\n"
        "    if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""
