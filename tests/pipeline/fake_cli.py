"""`python tests/pipeline/fake_cli.py run ...`: the real `pose-stream` command with FakeEstimator as the model.

FAKE_DELAYS='{"infer": 0.05}' slows stages down (JSON, seconds per stage).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pose_stream.cli.main import console_main

sys.path.insert(0, str(Path(__file__).resolve().parent))


def use_the_fake_estimator() -> None:
    """Runs inside the program's start-up (signals handled as the real program handles them)."""
    import pose_stream.cli.run as run_command
    from pipeline_fakes import FakeEstimator

    run_command.make_estimator = lambda args: FakeEstimator(delays=json.loads(os.environ.get("FAKE_DELAYS", "{}")))


if __name__ == "__main__":
    sys.exit(console_main(prepare=use_the_fake_estimator))
