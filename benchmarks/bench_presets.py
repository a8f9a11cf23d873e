"""Preset benchmark sweeps on the same API as `pose-stream bench` (pose_stream.benchmarking.run_benchmark).

    python benchmarks/bench_presets.py cpu-small          # this kind of machine: small_w16, ONNX Runtime
    python benchmarks/bench_presets.py people-sweep       # every backend present, 0..40 people, 512x960
    python benchmarks/bench_presets.py gpu-w32            # torch FP16, W32 at 512x960 and 512x512, batch 1 and 8

Each prints the Markdown tables and writes <preset>.json and <preset>.png into --output-dir
(default: benchmarks/results). Add --weights to time a real checkpoint instead of random weights.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from pose_stream.benchmarking import BenchConfig, parse_backends, run_benchmark
from pose_stream.errors import PoseStreamError

PRESETS = {
    "cpu-small": lambda: BenchConfig(backends=parse_backends("onnxruntime"), model="small_w16", people=(10,),
                                     frames=200),
    "people-sweep": lambda: BenchConfig(backends=parse_backends("all"), people=(0, 1, 10, 30, 40), frames=100),
    "gpu-w32": lambda: BenchConfig(backends=parse_backends("torch-fp16"), model="w32_512",
                                   input_sizes=((512, 960), (512, 512)), batches=(1, 8), people=(10,), frames=200),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--weights", help="checkpoint for the preset's model (default: random weights)")
    parser.add_argument("--frames", type=int, help="override the preset's timed frames")
    parser.add_argument("--output-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    try:
        config = PRESETS[args.preset]()
        if args.weights:
            config = replace(config, weights=args.weights)
        if args.frames:
            config = replace(config, frames=args.frames)
        report = run_benchmark(config, command=" ".join(["python", *sys.argv]))
    except PoseStreamError as exc:
        print(f"bench_presets: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.output_dir)
    print(report.markdown())
    print(f"wrote {report.write_json(out / f'{args.preset}.json')} and {report.plot(out / f'{args.preset}.png')}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
