"""Memory soak: run the whole pipeline over a long generated clip and report resident-memory growth.

    python benchmarks/memory_soak.py                      # 10,000 frames, tiny_w8 random weights, PoseEstimator
    python benchmarks/memory_soak.py --frames 2000 --standin   # without PoseEstimator: the tests' torch stand-in

Every output path is exercised (drawing, annotated MP4, JSON lines); RSS is sampled every --every frames.
Pass: RSS growth from the end of warm-up to the end < 5%. Prints a table, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_estimator(args: argparse.Namespace):
    if args.standin:
        sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
        from pipeline_fakes import TinyTorchEstimator

        return TinyTorchEstimator()
    from pose_stream.estimator import PoseEstimator

    return PoseEstimator(args.model, backend=args.backend, input_size=args.input_size, flip=False, device="cpu")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1000, help="frames before the baseline sample")
    parser.add_argument("--every", type=int, default=250, help="sample RSS every N frames")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated clip")
    parser.add_argument("--model", default="tiny_w8")
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--standin", action="store_true", help="use the tests' TinyTorchEstimator (no PoseEstimator)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine may be shared)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory_soak.json"))
    args = parser.parse_args()
    if args.warmup >= args.frames:
        parser.error("--warmup must be smaller than --frames")

    import torch
    from tqdm import tqdm

    from pose_stream.pipeline.sources.demo import pattern_frames
    from pose_stream.pipeline import GeneratedSource, JsonLinesSink, Pipeline, Sink, VideoSink
    from pose_stream.pipeline.stats import rss_bytes

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    samples: list[tuple[int, float, int]] = []
    bar = tqdm(total=args.frames, unit="frame", disable=None)

    class RssProbe(Sink):
        def write(self, result) -> None:
            bar.update(1)
            n = result.frame.seq + 1
            if n % args.every == 0 or n == args.warmup:
                samples.append((n, time.monotonic(), rss_bytes()))

    with tempfile.TemporaryDirectory() as tmp:
        sinks = [RssProbe(), VideoSink(Path(tmp) / "soak.mp4"), JsonLinesSink(Path(tmp) / "soak.jsonl")]
        source = GeneratedSource(num_frames=args.frames, size=(width, height), source_id="soak", frames=pattern_frames)
        started = time.monotonic()
        stats = Pipeline(build_estimator(args), [source], sinks).run()
        elapsed = time.monotonic() - started
    bar.close()

    baseline = next(rss for n, _, rss in samples if n >= args.warmup)
    final = samples[-1][2]
    growth = (final - baseline) / baseline
    print(f"{'frame':>7} {'RSS MiB':>9} {'vs warm-up':>11}")
    for n, _, rss in samples:
        if n % (args.every * 4) == 0 or n in (args.warmup, samples[-1][0]):
            print(f"{n:>7} {rss / 2**20:>9.1f} {((rss - baseline) / baseline) if n >= args.warmup else 0:>+10.2%}")
    verdict = "PASS" if growth < 0.05 else "FAIL"
    print(f"\n{stats.frames} frames in {elapsed:.1f} s ({stats.fps:.1f} FPS), latency p50/p95/p99 "
          f"{stats.to_dict()['latency_ms']}")
    print(f"RSS after warm-up {baseline / 2**20:.1f} MiB -> end {final / 2**20:.1f} MiB: {growth:+.2%} ({verdict}, limit 5%)")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "estimator": "TinyTorchEstimator (tests)" if args.standin else "PoseEstimator",
        "model": "tiny_w8" if args.standin else args.model, "frames": stats.frames, "size": args.size,
        "seconds": round(elapsed, 1), "fps": stats.to_dict()["fps"], "rss_baseline_mib": round(baseline / 2**20, 2),
        "rss_final_mib": round(final / 2**20, 2), "growth": round(growth, 5), "pass": growth < 0.05,
        "samples": [{"frame": n, "rss_mib": round(rss / 2**20, 2)} for n, _, rss in samples],
        "command": " ".join(sys.argv),
    }, indent=1))
    print(f"wrote {out}")
    return 0 if growth < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
