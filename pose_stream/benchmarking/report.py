"""Benchmark results: rows, the Markdown tables, the JSON file and the PNG plot."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pose_stream.benchmarking.environment import describe
from pose_stream.benchmarking.stats import StageStats
from pose_stream.redact import mask_in

ENGINE_ONLY, END_TO_END, PIPELINE, BASELINE = "engine-only", "end-to-end", "pipeline", "baseline"
KINDS = (ENGINE_ONLY, END_TO_END, PIPELINE, BASELINE)
STAGE_ORDER = ("read", "prepare", "infer", "aggregate", "group", "predict_batch")
SUMMARY_COLUMNS = ("backend", "precision", "device", "input", "batch", "flip", "people", "engine FPS",
                   "end-to-end FPS", "e2e / engine", "pipeline FPS", "pipeline / engine",
                   "pipeline latency p50/p95/p99 ms", "baseline FPS", "speed-up vs baseline")
STAGE_COLUMNS = ("path", "backend", "input", "batch", "flip", "people", "stage", "median ms", "p99 ms",
                 "decode GPU ms", "decode CPU ms")


@dataclass(frozen=True)
class BenchRow:
    """One timed configuration.

    Attributes:
        kind: engine-only (network calls back to back), end-to-end (pose-stream's stages one after another),
            pipeline (the same stages in the threaded Pipeline, batch 1, headless), or baseline.
        backend, precision, device: the engine as it reported itself.
        input_hw: network input (height, width); batch: frames per engine call; flip: flip test.
        people: figures per generated frame (None for a video or engine-only).
        decode_input: "network" or "synthetic" (see BenchConfig); "" for engine-only.
        frames: frames timed; fps: frames per second over them (None when the row could not run).
        stages: latency per stage; decode_split: {"gpu_ms", "cpu_ms"} medians of decoding by processor.
        latency_ms: pipeline rows: capture-to-poses latency {"p50", "p95", "p99"}; None for the other kinds.
        note: why a row did not run, or what to know about it.
    """

    kind: str
    backend: str
    precision: str
    device: str
    input_hw: tuple[int, int]
    batch: int
    flip: bool
    people: int | None
    decode_input: str = ""
    frames: int = 0
    fps: float | None = None
    stages: dict[str, StageStats] = field(default_factory=dict)
    decode_split: dict[str, float] | None = None
    latency_ms: dict[str, float | None] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def input_label(self) -> str:
        return f"{self.input_hw[0]}x{self.input_hw[1]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "backend": self.backend, "precision": self.precision, "device": self.device,
            "input_hw": list(self.input_hw), "batch": self.batch, "flip": self.flip, "people": self.people,
            "decode_input": self.decode_input, "frames": self.frames,
            "fps": None if self.fps is None else round(self.fps, 4),
            "stages": {name: s.to_dict() for name, s in self.stages.items()},
            "decode_split": self.decode_split, "latency_ms": self.latency_ms, "note": self.note,
        }


@dataclass
class BenchReport:
    """All rows of one run plus what they were measured on (environment) and how (settings)."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    rows: list[BenchRow] = field(default_factory=list)

    def find(self, kind: str, **where: Any) -> BenchRow | None:
        for row in self.rows:
            if row.kind == kind and all(getattr(row, key) == value for key, value in where.items()):
                return row
        return None

    def summary(self) -> list[dict[str, Any]]:
        """One line per engine configuration and people count, joining engine-only, end-to-end, pipeline (batch 1
        lines only: the pipeline runs one frame at a time) and baseline."""
        lines = []
        for engine in (r for r in self.rows if r.kind == ENGINE_ONLY):
            for people in self._people():
                same = dict(input_hw=engine.input_hw, flip=engine.flip, people=people)
                e2e = self.find(END_TO_END, backend=engine.backend, precision=engine.precision,
                                batch=engine.batch, **same)
                piped = self.find(PIPELINE, backend=engine.backend, precision=engine.precision, **same) \
                    if engine.batch == 1 else None
                base = self.find(BASELINE, **same)
                e2e_fps = e2e.fps if e2e else None
                pipeline_fps = piped.fps if piped else None
                base_fps = base.fps if base else None
                lines.append({
                    "backend": engine.backend, "precision": engine.precision, "device": engine.device,
                    "input": engine.input_label, "batch": engine.batch, "flip": engine.flip, "people": people,
                    "engine_fps": engine.fps, "e2e_fps": e2e_fps,
                    "e2e_over_engine": _ratio(e2e_fps, engine.fps),
                    "pipeline_fps": pipeline_fps, "pipeline_over_engine": _ratio(pipeline_fps, engine.fps),
                    "pipeline_latency_ms": piped.latency_ms if piped else None,
                    "baseline_fps": base_fps, "speedup_vs_baseline": _ratio(e2e_fps, base_fps),
                    "e2e_note": e2e.note if e2e else "", "pipeline_note": piped.note if piped else "",
                })
        return lines

    def _people(self) -> list[int | None]:
        counts = sorted({r.people for r in self.rows if r.kind != ENGINE_ONLY}, key=lambda p: (p is None, p or 0))
        return counts or [None]

    def markdown(self) -> str:
        header = [
            f"Measured {describe(self.environment)}.",
            f"Command: `{self.settings.get('command', '')}`",
            f"Decoding input: {self.settings.get('decode_input', '')}; model {self.settings.get('model', '')} "
            f"({self.settings.get('weights_label', '')}); warm-up {self.settings.get('warmup', 0)} frames excluded.",
            "Baseline = a serial pipeline organised like the reference test script (PyTorch forward, F.interpolate "
            "aggregation, plain-Python grouping with per-person refine), measured in the same run; not a product path.",
            "End-to-end = the estimator's stages one after another; pipeline = the same stages in the threaded "
            "Pipeline (capture, infer, aggregate, group threads; batch 1, no rendering, no outputs), decoding the "
            "same input as end-to-end; latency = capture to poses.",
        ]
        summary = [_md_row(SUMMARY_COLUMNS), _md_row(["---"] * len(SUMMARY_COLUMNS))]
        for line in self.summary():
            summary.append(_md_row([
                line["backend"], line["precision"], line["device"], line["input"], line["batch"],
                "on" if line["flip"] else "off", _people_label(line["people"]), _num(line["engine_fps"]),
                _num(line["e2e_fps"]),
                _num(line["e2e_over_engine"], 3), _num(line["pipeline_fps"]), _num(line["pipeline_over_engine"], 3),
                _latencies(line["pipeline_latency_ms"]), _num(line["baseline_fps"]),
                _num(line["speedup_vs_baseline"], 1) + ("x" if line["speedup_vs_baseline"] else ""),
            ]))
        stages = [_md_row(STAGE_COLUMNS), _md_row(["---"] * len(STAGE_COLUMNS))]
        for row in self.rows:
            split = row.decode_split or {}
            for name, s in row.stages.items():
                stages.append(_md_row([
                    row.kind, f"{row.backend} {row.precision}", row.input_label, row.batch,
                    "on" if row.flip else "off", "-" if row.kind == ENGINE_ONLY else _people_label(row.people),
                    name, _num(s.median_ms, 3),
                    _num(s.p99_ms, 3), _num(split.get("gpu_ms"), 3), _num(split.get("cpu_ms"), 3),
                ]))
        notes: dict[str, list[str]] = {}
        for row in self.rows:
            if row.note:
                notes.setdefault(row.note, []).append(f"{row.kind} {row.backend}")
        parts = ["\n".join(header), "\n".join(summary), "Per-stage latency:\n\n" + "\n".join(stages)]
        if notes:
            parts.append("Notes:\n" + "\n".join(
                f"- {', '.join(dict.fromkeys(where))}: {note}" for note, where in notes.items()))
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        # Settings hold the command line and file names: a stream URL's credentials never reach the file.
        return mask_in({"environment": self.environment, "settings": self.settings,
                        "summary": self.summary(), "rows": [row.to_dict() for row in self.rows]})

    def write_json(self, path: str | os.PathLike) -> Path:
        out = Path(path)
        out.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return out

    def plot(self, path: str | os.PathLike) -> Path:
        """PNG: FPS against people (end-to-end, baseline, engine-only) and the median stage breakdown."""
        from pose_stream._optional import require

        matplotlib = require("matplotlib", "the benchmark plot")
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
        self._plot_fps(left)
        self._plot_stages(right)
        fig.suptitle(f"pose-stream bench, {describe(self.environment)[:110]}", fontsize=8)
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out

    def _plot_fps(self, ax) -> None:
        people = [p for p in self._people() if p is not None]
        series: dict[str, list[tuple[int, float]]] = {}
        for row in self.rows:
            if row.fps is None:
                continue
            label = f"{row.kind} {row.backend} {row.precision} {row.input_label} b{row.batch} flip {int(row.flip)}"
            if row.kind == ENGINE_ONLY:
                for p in people or [0]:
                    series.setdefault(label, []).append((p, row.fps))
            elif row.people is not None:
                series.setdefault(label, []).append((row.people, row.fps))
        styles = {ENGINE_ONLY: ":", END_TO_END: "-", PIPELINE: "-.", BASELINE: "--"}
        for label, points in series.items():
            points.sort()
            ax.plot([p for p, _ in points], [f for _, f in points], styles[label.split(" ")[0]], marker="o", label=label)
        ax.set_xlabel("people per frame")
        ax.set_ylabel("frames per second")
        ax.set_yscale("log")
        ax.set_title("FPS against people")
        ax.grid(True, which="both", alpha=0.3)
        if series:
            ax.legend(fontsize=6)

    def _plot_stages(self, ax) -> None:
        most = max((p for p in self._people() if p is not None), default=None)
        rows = [r for r in self.rows if r.stages and r.fps is not None
                and (r.kind == ENGINE_ONLY or r.people == most)]
        present = {name for r in rows for name in r.stages}
        names = [n for n in STAGE_ORDER if n in present] + sorted(present - set(STAGE_ORDER))
        labels = [f"{r.kind}\n{r.backend} {r.input_label} b{r.batch} f{int(r.flip)}" for r in rows]
        left = [0.0] * len(rows)
        for name in names:
            widths = [r.stages[name].median_ms / r.batch if name in r.stages else 0.0 for r in rows]
            ax.barh(labels, widths, left=left, label=name)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_xlabel("median ms per frame (per call / batch)")
        ax.set_title(f"stage breakdown ({_people_label(most)} people)")
        ax.tick_params(axis="y", labelsize=6)
        if names:
            ax.legend(fontsize=7)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _latencies(latency: dict[str, float | None] | None) -> str:
    if not latency:
        return "n/a"
    return "/".join(_num(latency.get(q), 1) for q in ("p50", "p95", "p99"))


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _people_label(people: int | None) -> str:
    return "video" if people is None else str(people)


def _md_row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
