"""Signal soak: stop `pose-stream run` with SIGINT and SIGTERM at random moments and check what it leaves.

    python benchmarks/signal_soak.py                       # 20 SIGINT + 20 SIGTERM, the demo model, a 120-frame video
    python benchmarks/signal_soak.py --runs 3 --max-delay 6   # a quick look

Each run plays a video file (made from the demo scene) through the real command with the bundled demo model,
writing an annotated video and JSON lines, and receives one signal between --min-delay and --max-delay seconds
after it starts (model loading, the first network call and the middle of the run included). A run passes when:
the exit status is 0; every JSON line parses and their `seq` are 0, 1, ..., n-1 (no frame before the stop is
missing); the video decodes to exactly n frames (or, with n = 0, no video was written); no `.partial` file is
left. Prints a table; writes JSON under benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_video(path: Path, frames: int) -> Path:
    import cv2

    from pose_stream.pipeline.sources.demo import DEMO_FPS, demo_frames

    writer = None
    for image in demo_frames(frames):
        if writer is None:
            height, width = image.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), DEMO_FPS, (width, height))
        writer.write(image)
    writer.release()
    return path


def count_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def one_run(video: Path, work: Path, sig: signal.Signals, delay: float, extra: list[str]) -> dict:
    jsonl, saved = work / "poses.jsonl", work / "annotated.mp4"
    for stale in work.iterdir():
        stale.unlink()
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path

    model = ["--model", DEMO_MODEL_NAME, "--weights", str(demo_model_path()), "--input-size", str(DEMO_INPUT_SIZE)]
    command = [sys.executable, "-m", "pose_stream", "--source", str(video), *model, "--json", str(jsonl), "--save",
               str(saved), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(delay)
    finished_before = proc.poll() is not None
    sent = time.monotonic()
    if not finished_before:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    exit_seconds = time.monotonic() - sent
    problems = []
    if proc.returncode != 0:
        problems.append(f"exit status {proc.returncode}: {err.strip().splitlines()[-1:] }")
    lines = jsonl.read_text().splitlines() if jsonl.exists() else []
    try:
        seqs = [json.loads(line)["seq"] for line in lines]
    except (json.JSONDecodeError, KeyError) as exc:
        problems.append(f"bad JSON line: {exc}")
        seqs = []
    if seqs != list(range(len(seqs))):
        problems.append("JSON lines are not frames 0..n-1")
    video_frames = count_frames(saved) if saved.exists() else 0
    if video_frames != len(lines):
        problems.append(f"video holds {video_frames} frames, JSON lines {len(lines)}")
    leftovers = [p.name for p in work.iterdir() if ".partial" in p.name]
    if leftovers:
        problems.append(f"left {leftovers}")
    if "terminate called" in err:
        problems.append("C++ terminate")
    return {"signal": sig.name, "delay_s": round(delay, 2), "finished_before_signal": finished_before,
            "exit_status": proc.returncode, "exit_s_after_signal": round(exit_seconds, 2), "frames": len(lines),
            "video_frames": video_frames, "ok": not problems, "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per signal (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=120, help="frames of the video (default: %(default)s)")
    parser.add_argument("--min-delay", type=float, default=0.3, help="seconds (default: %(default)s)")
    parser.add_argument("--max-delay", type=float, default=14.0, help="seconds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/signal-soak-DATE.json)")
    parser.add_argument("extra", nargs="*", help="more options for pose-stream run (after --)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "clip.mp4", args.frames)
        work = Path(tmp) / "out"
        work.mkdir()
        plan = [s for _ in range(args.runs) for s in (signal.SIGINT, signal.SIGTERM)]
        runs = []
        for i, sig in enumerate(plan, 1):
            run = one_run(video, work, sig, rng.uniform(args.min_delay, args.max_delay), args.extra)
            runs.append(run)
            print(f"{i:3d}/{len(plan)} {run['signal']:<7} at {run['delay_s']:5.2f} s: exit {run['exit_status']} "
                  f"after {run['exit_s_after_signal']:.2f} s, {run['frames']:3d} frames "
                  f"{'ok' if run['ok'] else 'FAIL ' + '; '.join(run['problems'])}", flush=True)
    summary = {}
    for name in ("SIGINT", "SIGTERM"):
        mine = [r for r in runs if r["signal"] == name]
        waits = [r["exit_s_after_signal"] for r in mine if not r["finished_before_signal"]]
        summary[name] = {"runs": len(mine), "ok": sum(r["ok"] for r in mine),
                         "exit_0": sum(r["exit_status"] == 0 for r in mine),
                         "median_exit_s": round(statistics.median(waits), 2) if waits else None,
                         "max_exit_s": max(waits) if waits else None}
    print("\n| signal | runs | passed | exit 0 | median s to exit | max s to exit |\n| --- | --- | --- | --- | --- | --- |")
    for name, s in summary.items():
        print(f"| {name} | {s['runs']} | {s['ok']} | {s['exit_0']} | {s['median_exit_s']} | {s['max_exit_s']} |")
    date = datetime.date.today().isoformat()
    out = args.out or ROOT / "benchmarks" / "results" / f"signal-soak-{date}.json"
    out.write_text(json.dumps({
        "date": date, "command": " ".join(["python", "benchmarks/signal_soak.py", *sys.argv[1:]]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "seconds": round(time.time() - started, 1), "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "summary": summary, "runs": runs}, indent=2, default=str), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
