"""How live the demo feels: `pose-stream --source demo` as a user runs it, frames per second and latency.

    python benchmarks/demo_live.py                                  # 3 runs of each mode, this tree
    python benchmarks/demo_live.py --tree before=/tmp/old --tree after=. --runs 3 --name demo-live-ab

Each run is the real command with the demo's defaults (like a camera at 25 fps, newest frame kept; the annotated
video written, as `pose-stream --source demo` does) and JSON lines to measure it by: `python -m pose_stream run
--source demo --save V.mp4 --json F`; then the same with `--every-frame` (every frame, as fast as they are
processed); each in a fresh process. From its JSON lines: frames processed, frames per second (processed frames over
the time from the first frame's capture to the last one's result), latency p50 and p99 (capture to result).
With several --tree, the trees take turns within each round, so that they share the machine's moods. Prints a
table of medians; writes every run to JSON under benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODES = {"camera (default)": [], "every frame": ["--every-frame"]}


def one_run(tree: Path, extra: list[str], work: Path) -> dict:
    out, video = work / "poses.jsonl", work / "demo.mp4"
    out.unlink(missing_ok=True)
    video.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.monotonic()
    command = [sys.executable, "-m", "pose_stream", "run", "--source", "demo", "--save", str(video), "--json", str(out)]
    done = subprocess.run([*command, *extra], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"pose-stream failed in {tree} ({done.returncode}): {done.stderr.strip()[-500:]}")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    stamps = [line["timestamps"] for line in lines]
    latency = sorted(s["latency_ms"] for s in stamps)
    span = max(s["done"] for s in stamps) - min(s["captured"] for s in stamps)
    return {"frames": len(lines), "fps": round((len(lines) - 1) / span, 2) if len(lines) > 1 else None,
            "latency_p50_ms": round(_quantile(latency, 0.5), 1), "latency_p99_ms": round(_quantile(latency, 0.99), 1),
            "wall_s": round(wall, 1)}


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="a checkout of pose-stream to run (repeatable; default: this one)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode per tree (default: %(default)s)")
    parser.add_argument("--name", default=None, help="JSON file stem (default: demo-live-DATE)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if any("=" not in t for t in args.tree):
        parser.error("--tree takes LABEL=PATH")
    trees = dict(t.split("=", 1) for t in args.tree) if args.tree else {"this tree": str(ROOT)}
    for label, path in trees.items():
        if not (Path(path) / "pose_stream" / "__main__.py").is_file():
            parser.error(f"--tree {label}={path}: not a pose-stream checkout")
    runs: dict[str, dict[str, list[dict]]] = {label: {mode: [] for mode in MODES} for label in trees}
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.runs):
            for label, path in trees.items():
                for mode, extra in MODES.items():
                    result = one_run(Path(path).resolve(), extra, Path(work))
                    runs[label][mode].append(result)
                    print(f"round {r + 1}: {label}, {mode}: {result}", flush=True)
    print(f"\n{'tree':<14} {'mode':<18} {'frames':>7} {'FPS':>6} {'p50 ms':>8} {'p99 ms':>8}   (medians of {args.runs})")
    summary = {}
    for label in trees:
        for mode in MODES:
            rows = runs[label][mode]
            med = {key: statistics.median(row[key] for row in rows) for key in ("frames", "fps", "latency_p50_ms",
                                                                               "latency_p99_ms")}
            summary.setdefault(label, {})[mode] = med
            print(f"{label:<14} {mode:<18} {med['frames']:>7.0f} {med['fps']:>6.2f} {med['latency_p50_ms']:>8.0f} "
                  f"{med['latency_p99_ms']:>8.0f}")
    result = {"date": datetime.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
              "trees": trees, "median": summary, "runs": runs}
    name = args.name or f"demo-live-{result['date']}"
    out = args.out_dir / f"{name}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
