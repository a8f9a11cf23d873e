"""Speed measurements: `pose-stream bench` (engine-only, end-to-end, threaded pipeline, reference-style baseline).
May import: everything below the CLI (estimator, engine, decoding, pipeline, synthetic, models); not cli/ or train/.
"""
from __future__ import annotations

from pose_stream.benchmarking.backends import BACKEND_SPECS, BackendSpec, parse_backends
from pose_stream.benchmarking.config import BenchConfig
from pose_stream.benchmarking.report import BenchReport, BenchRow
from pose_stream.benchmarking.runner import run_benchmark

__all__ = ["BACKEND_SPECS", "BackendSpec", "BenchConfig", "BenchReport", "BenchRow", "parse_backends", "run_benchmark"]
