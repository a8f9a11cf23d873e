"""Pipeline statistics: per-stage timings, end-to-end latency percentiles, throughput, drops, reconnects.

Samples live in fixed-size windows, so a run of days keeps constant memory; percentiles describe the most
recent `WINDOW` frames, counts and means the whole run.
"""
from __future__ import annotations

import os
import resource
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from pose_stream.pipeline.channels import QueueStats

WINDOW = 8192
STAGES = ("prepare", "infer", "aggregate", "group", "track", "render", "sinks")


class RollingSamples:
    """The last `capacity` values of a measurement, plus the count and sum of all of them."""

    def __init__(self, capacity: int = WINDOW) -> None:
        self._values = np.zeros(capacity, np.float64)
        self._next = 0
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % len(self._values)
        self.count += 1
        self.total += value

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def percentiles(self, qs: Sequence[float] = (50, 95, 99)) -> list[float]:
        if not self.count:
            return [float("nan")] * len(qs)
        window = self._values[: min(self.count, len(self._values))]
        return [float(v) for v in np.percentile(window, qs)]


class PipelineStats:
    """Filled by the pipeline's output stage (one thread); read by the caller after or during the run."""

    def __init__(self, source_ids: Sequence[str]) -> None:
        self.started_at = time.monotonic()
        self.source_ids = list(source_ids)
        self.frames = 0
        self.people = 0
        self.frames_per_source = [0] * len(source_ids)
        self.stage_seconds = {name: RollingSamples() for name in STAGES}
        self.latency = RollingSamples()
        self.first_result_at: float | None = None
        self.last_result_at: float | None = None
        self._recent: deque[float] = deque(maxlen=64)
        self.backend = ""
        self.queues: list[QueueStats] = []
        self.source_status: list[dict[str, Any]] = []
        self.input_drops = [0] * len(source_ids)
        self.discarded = 0  # frames abandoned in flight when a stop ran out of drain time
        self.source_latency = [RollingSamples() for _ in source_ids]
        self.batch_sizes: Counter[int] = Counter()  # written by the inference thread
        self.backend_drops = 0  # frames lost while a remote backend was unreachable
        self.batch_seconds = RollingSamples()

    def record_batch(self, size: int, seconds: float) -> None:
        """One network call of the inference stage: how many frames it held and how long it took."""
        self.batch_sizes[size] += 1
        self.batch_seconds.add(seconds)

    def record(self, source_index: int, latency: float, timings: dict[str, float], people: int) -> None:
        now = time.monotonic()
        if self.first_result_at is None:
            self.first_result_at = now
        self.last_result_at = now
        self._recent.append(now)
        self.frames += 1
        self.people += people
        self.frames_per_source[source_index] += 1
        self.latency.add(latency)
        self.source_latency[source_index].add(latency)
        for name, seconds in timings.items():
            if name in self.stage_seconds:
                self.stage_seconds[name].add(seconds)

    @property
    def fps(self) -> float:
        """Throughput over the run, from the first result to the last (start-up excluded)."""
        if self.frames < 2 or self.first_result_at is None or self.last_result_at == self.first_result_at:
            return float("nan")
        return (self.frames - 1) / (self.last_result_at - self.first_result_at)

    def recent_fps(self) -> float:
        """Throughput over the last (up to) 64 frames: what an on-screen counter shows."""
        if len(self._recent) < 2 or self._recent[-1] == self._recent[0]:
            return float("nan")
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])

    @property
    def reconnects(self) -> int:
        return sum(int(s.get("reconnects", 0)) for s in self.source_status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (seconds converted to milliseconds where named *_ms)."""
        p50, p95, p99 = self.latency.percentiles()
        return {
            "frames": self.frames,
            "fps": _finite(self.fps),
            "people_per_frame": self.people / self.frames if self.frames else 0.0,
            "latency_ms": {"p50": _ms(p50), "p95": _ms(p95), "p99": _ms(p99), "mean": _ms(self.latency.mean)},
            "stages_ms": {
                name: {"mean": _ms(s.mean), "p95": _ms(s.percentiles((95,))[0])}
                for name, s in self.stage_seconds.items() if s.count
            },
            "sources": [
                {**status, "frames_processed": n, "frames_dropped": drops,
                 "latency_ms": dict(zip(("p50", "p99"), (_ms(v) for v in latency.percentiles((50, 99)))))}
                for status, n, drops, latency in zip(self.source_status, self.frames_per_source, self.input_drops,
                                                     self.source_latency)
            ],
            "batches": self._batches(),
            "queues": [vars(q).copy() for q in self.queues],
            "discarded_in_flight": self.discarded,
            "backend_unreachable_drops": self.backend_drops,
            "backend": self.backend,
        }

    def _batches(self) -> dict[str, Any]:
        sizes = dict(sorted(self.batch_sizes.items()))
        calls = sum(sizes.values())
        p50, p99 = self.batch_seconds.percentiles((50, 99))
        return {"calls": calls, "sizes": {str(k): v for k, v in sizes.items()},
                "mean_size": round(sum(k * v for k, v in sizes.items()) / calls, 3) if calls else None,
                "ms": {"p50": _ms(p50), "p99": _ms(p99)}}

    def format_summary(self, stages: bool = False) -> str:
        """A few lines for people: frames, FPS, latency percentiles, drops, reconnects (and stage timings)."""
        d = self.to_dict()
        lat = d["latency_ms"]
        drops = sum(self.input_drops)
        lines = [
            f"frames {d['frames']}  |  {_fmt(d['fps'], '.1f')} FPS  |  latency p50 {_fmt(lat['p50'], '.0f')} ms  "
            f"p95 {_fmt(lat['p95'], '.0f')} ms  p99 {_fmt(lat['p99'], '.0f')} ms  |  dropped {drops}  |  "
            f"reconnects {self.reconnects}"
        ]
        for s in d["sources"]:
            skipped = f", skipped {s['skipped']} unreadable" if s.get("skipped") else ""
            latency = s["latency_ms"]
            lines.append(f"  source {s['source']}: {s['state']}, read {s['frames_read']}, processed "
                         f"{s['frames_processed']}, dropped {s['frames_dropped']}{skipped}, reconnects "
                         f"{s['reconnects']}, stalls {s['stalls']}, latency p50 {_fmt(latency['p50'], '.0f')} ms "
                         f"p99 {_fmt(latency['p99'], '.0f')} ms")
        batches = d["batches"]
        if batches["calls"] and set(self.batch_sizes) != {1}:
            lines.append(f"  batches: {batches['calls']} network calls, {batches['mean_size']:.2f} frames each "
                         f"(sizes {', '.join(f'{k}: {v}' for k, v in batches['sizes'].items())}), "
                         f"{_fmt(batches['ms']['p50'], '.0f')} ms p50 a call")
        if self.backend_drops:
            lines.append(f"  {self.backend_drops} frame(s) dropped while the backend was unreachable")
        if self.discarded:
            lines.append(f"  {self.discarded} frame(s) in flight were abandoned when stopping")
        if stages:
            lines.append("  stage       mean ms    p95 ms")
            for name, t in d["stages_ms"].items():
                lines.append(f"  {name:<10} {_fmt(t['mean'], '9.2f')} {_fmt(t['p95'], '9.2f')}")
            for q in d["queues"]:
                lines.append(f"  queue {q['name']}: capacity {q['capacity']}, deepest {q['max_depth']}, "
                             f"dropped {q['drops']}")
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    return None if value != value else round(value, 3)


def _ms(seconds: float) -> float | None:
    return None if seconds != seconds else round(seconds * 1000.0, 3)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc), or its peak where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        scale = 1 if os.uname().sysname == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
