"""`python tests/pipeline/fake_cli.py run ...`: the real `pose-stream` command with FakeEstimator as the model.

FAKE_DELAYS='{"infer": 0.05}' slows stages down (JSON, seconds per stage).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pose_stream.cli.signals import STOP_SIGNALS  # noqa: E402 - first, as the real program does

STOP_SIGNALS.install()
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pose_stream.cli.run as run_command  # noqa: E402
from pipeline_fakes import FakeEstimator  # noqa: E402
from pose_stream.cli.main import console_main  # noqa: E402

run_command.make_estimator = lambda args: FakeEstimator(delays=json.loads(os.environ.get("FAKE_DELAYS", "{}")))

if __name__ == "__main__":
    sys.exit(console_main())
