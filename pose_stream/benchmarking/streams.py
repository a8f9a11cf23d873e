"""`pose-stream bench --streams 1,4,16`: N cameras at once through the real pipeline, with and without batching.

Each stream is a paced, camera-like generated source (`GeneratedSource(paced=True)`: a frame every 1/fps
seconds, the newest kept, stale ones dropped and counted) cycling through a few pre-rendered frames, so that
drawing the scene costs nothing. For each stream count the pipeline runs with `batch` 1 and with `batch` equal
to the stream count (capped by `max_batch`). Results of the first `warmup` seconds are left out; the figures
are the pipeline's own statistics: processed frames per second in total, capture-to-poses latency p50/p99,
drops, the batch sizes formed and the time of one network call.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig, PipelineStats, Sink
from pose_stream.pipeline.frames import FrameResult
from pose_stream.redact import mask_in

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamsConfig:
    """One streams benchmark.

    Attributes:
        streams: stream counts to run (each with batch 1 and with batching).
        fps: frame rate of every stream.
        seconds: how long each run is timed (after `warmup`).
        warmup: seconds of results left out at the start (backend creation, first calls, graph capture).
        max_batch: the largest batch (the batched run uses min(streams, max_batch)).
        batch_wait: seconds a partial batch waits for its oldest frame.
        size: (width, height) of the generated frames.
    """

    streams: tuple[int, ...] = (1, 4, 16)
    fps: float = 25.0
    seconds: float = 20.0
    warmup: float = 5.0
    max_batch: int = 16
    batch_wait: float = 0.01
    size: tuple[int, int] = (640, 360)

    def __post_init__(self) -> None:
        if not self.streams or any(n < 1 for n in self.streams):
            raise PoseStreamError(f"--streams takes counts of at least 1, got {list(self.streams)}")
        if not (self.fps > 0 and self.seconds > 0 and self.warmup >= 0 and self.max_batch >= 1):
            raise PoseStreamError("--stream-fps and --seconds must be positive, --stream-warmup >= 0")


@dataclass
class StreamsRow:
    """One run: `streams` cameras at `batch`."""

    streams: int
    batch: int
    frames: int
    fps: float
    latency_ms: dict[str, float | None]
    dropped: int
    read: int
    per_stream_frames: list[int]
    batch_sizes: dict[str, int]
    batch_ms: dict[str, float | None]
    stages_ms: dict[str, Any] = field(default_factory=dict)


class _TimedSink(Sink):
    """Copies the results captured after `start` into a PipelineStats of its own (warm-up left out)."""

    def __init__(self, source_ids: Sequence[str], start: float) -> None:
        self.stats = PipelineStats(source_ids)
        self.since = start

    def write(self, result: FrameResult) -> None:
        if result.frame.captured_at >= self.since:
            self.stats.record(result.frame.source_index, result.latency, result.timings, len(result.poses))


def run_streams(make_estimator: Callable[[int], Any], frames: Sequence[np.ndarray], config: StreamsConfig,
                progress: Callable[[str], None] | None = None) -> list[StreamsRow]:
    """Every stream count with batch 1 and batched. `make_estimator(batch)` builds a fresh estimator for a run
    (the pipeline owns and closes it); `frames` are cycled by every stream."""
    rows = []
    for count in config.streams:
        for batch in dict.fromkeys((1, min(count, config.max_batch))):
            if progress is not None:
                progress(f"{count} stream(s), batch {batch}: {config.warmup + config.seconds:.0f} s")
            rows.append(_one_run(make_estimator(batch), frames, config, count, batch))
    return rows


def _one_run(estimator: Any, frames: Sequence[np.ndarray], config: StreamsConfig, count: int,
             batch: int) -> StreamsRow:
    total = int(round((config.warmup + config.seconds) * config.fps))

    def clip(num_frames: int, _size: tuple[int, int]) -> Iterator[np.ndarray]:
        return (frames[i % len(frames)] for i in range(num_frames))

    sources = [GeneratedSource(total, config.size, source_id=f"stream{i}", fps=config.fps, frames=clip, paced=True)
               for i in range(count)]
    sink = _TimedSink([s.source_id for s in sources], time.monotonic() + config.warmup)
    pipeline = Pipeline(estimator, sources, [sink],
                        PipelineConfig(overlay=False, batch=batch, batch_wait=config.batch_wait))
    stats = pipeline.run()
    timed = sink.stats
    timed.source_status = stats.source_status
    window = config.seconds
    summary = timed.to_dict()
    batches = stats.to_dict()["batches"]
    return StreamsRow(
        streams=count, batch=batch, frames=timed.frames, fps=round(timed.frames / window, 3),
        latency_ms={k: summary["latency_ms"][k] for k in ("p50", "p95", "p99")},
        dropped=sum(stats.input_drops), read=sum(int(s["frames_read"]) for s in stats.source_status),
        per_stream_frames=list(timed.frames_per_source), batch_sizes=batches["sizes"], batch_ms=batches["ms"],
        stages_ms=summary["stages_ms"],
    )


def markdown(rows: Sequence[StreamsRow], title: str) -> str:
    lines = [f"### {title}", "",
             "| streams | batch | frames/s (total) | latency p50 ms | p99 ms | batch call p50 ms | mean batch | dropped | "
             "fewest frames of one stream |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        sizes = {int(k): v for k, v in row.batch_sizes.items()}
        calls = sum(sizes.values())
        mean = sum(k * v for k, v in sizes.items()) / calls if calls else float("nan")
        lines.append(f"| {row.streams} | {row.batch} | {row.fps:.2f} | {_fmt(row.latency_ms['p50'])} | "
                     f"{_fmt(row.latency_ms['p99'])} | {_fmt(row.batch_ms['p50'])} | {mean:.2f} | {row.dropped} | "
                     f"{min(row.per_stream_frames)} of {row.frames} |")
    return "\n".join(lines)


def write_json(rows: Sequence[StreamsRow], config: StreamsConfig, environment: dict, command: str,
               path: str | Path) -> Path:
    path = Path(path)
    document = {"environment": environment, "command": command, "settings": asdict(config),
                "rows": [asdict(row) for row in rows]}
    path.write_text(json.dumps(mask_in(document), indent=2), encoding="utf-8")
    return path


def plot(rows: Sequence[StreamsRow], path: str | Path, title: str) -> Path | None:
    """Frames/s and latency p99 against stream count, batch 1 and batched (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install 'pose-stream[bench]')")
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    single = [r for r in rows if r.batch == 1]
    batched = [r for r in rows if r.batch > 1 or r.streams == 1]  # one stream is its own batch
    for chosen, label in ((single, "batch 1"), (batched, "batched")):
        xs = [r.streams for r in chosen]
        left.plot(xs, [r.fps for r in chosen], marker="o", label=label)
        right.plot(xs, [r.latency_ms["p99"] or float("nan") for r in chosen], marker="o", label=label)
    left.set(xlabel="streams", ylabel="frames/s (total)", xscale="log", title="throughput")
    right.set(xlabel="streams", ylabel="latency p99 (ms)", xscale="log", title="latency")
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"
