"""A client script: plays a trial of the test project and prints what it saw, as JSON.

python tests/e2e/run_client.py GENERATED_DIR ORCHESTRATOR_ENDPOINT TICKS
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [sys.argv[1], os.path.join(os.path.dirname(HERE), "project")]

import cog_settings  # noqa: E402
from data_pb2 import Chat, Move  # noqa: E402

from cogment.client import Connection  # noqa: E402


def main() -> int:
    endpoint, ticks = sys.argv[2], int(sys.argv[3])
    seen: dict = {"turns": [], "cells": [], "rewards": [], "messages": []}
    with Connection(cog_settings, endpoint, timeout=30) as conn:
        trial = conn.start_trial(
            cog_settings.actor_classes.player,
            trial_cfg=cog_settings.trial.config_type(rounds=0),  # no end before `ticks`
            user_id="terminal-3",
        )
        seen["trial_id"] = trial.id
        for t in range(ticks):
            if t == 0:
                trial.multi_cast(Chat(text="hello from terminal 3"), [-1])
            obs, reward, messages = trial.do_action(Move(cell=t))
            seen["turns"].append(obs.turn)
            seen["cells"].append(list(obs.cells))
            seen["rewards"].append([reward.value, reward.confidence])
            for message in messages.messages:
                chat = Chat()
                message.payload.Unpack(chat)
                seen["messages"].append([message.sender_id, chat.text])
        trial.end()
        left_open = conn.start_trial(cog_settings.actor_classes.player, user_id="left-open")
        seen["left_open"] = left_open.id
    print(json.dumps(seen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
