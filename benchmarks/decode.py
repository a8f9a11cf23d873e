"""Decoding speed per frame: grouping paths (and aggregation where available) on synthetic outputs.

    python benchmarks/decode.py                   # 1, 10, 30, 40 people at 512x512 and 512x960
    python benchmarks/decode.py --people 30 --repeats 50

Rows per (network input, people), all measured in one run:
- baseline match: plain Python written the way the reference does it (dict of people keyed by their first
  tag value, a pure-Python Hungarian step for step like the `munkres` package): the matching of
  pose_stream/benchmarking/baseline.py, the `pose-stream bench` baseline;
- reference match: kernels/group_ref.match (the NumPy reference this project tests against);
- numba match+adjust: NumbaGrouper.match + place (matching, quarter offsets, scores): the <= 0.2 ms target;
- numba refine: refine request + CPU search + apply; numba group: everything after the candidates;
- reference refine: the reference's per-person refine (all K joints of every person over the full maps),
  timed on up to --ref-people people and scaled to all (marked "~");
- numba aggregation, decode (Decoder: Numba aggregation, grouping, the aggregation's refine, image mapping):
  when pose_stream.kernels.aggregate_numba is importable. (CUDA: run the aggregation benchmark on a GPU.)
Inputs: network outputs rendered from random known poses (10% hidden joints, noise), rotated over --frames
frames. Maps for grouping come from the aggregation when it is available, else are rendered directly at full
resolution (synthetic.render_maps). Prints a table; writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pose_stream.benchmarking.baseline import BaselineConfig, match_by_tag  # noqa: E402
from pose_stream.decoding import Decoder, ScaleResult  # noqa: E402
from pose_stream.joints import COCO  # noqa: E402
from pose_stream.kernels import group_ref, synthetic  # noqa: E402
from pose_stream.kernels.group_numba import NumbaGrouper, candidate_neighbours  # noqa: E402
from pose_stream.kernels.grouping_types import GroupingParams, RefineRequest  # noqa: E402
from pose_stream.preprocessing import Transform  # noqa: E402

PARAMS = GroupingParams()


# ------------------------------------------------------------------------------------- plain-Python baseline
BASELINE = BaselineConfig(joint_set=COCO, max_people=PARAMS.max_people, detection_threshold=PARAMS.detection_threshold,
                          tag_threshold=PARAMS.tag_threshold)
SOLVER_NAME = "pure-Python Munkres (pose_stream.benchmarking.hungarian)"


def baseline_match(cands) -> int:
    """Matching as the reference codes it (the bench baseline's plain-Python grouping); returns the count."""
    locations = np.stack([cands.x, cands.y], axis=2)
    return len(match_by_tag(cands.tags, locations, cands.value, BASELINE))


# ----------------------------------------------------------------------------------------------- inputs
def make_frames(people: int, hw: tuple[int, int], frames: int, seed: int):
    """[(outputs, flipped, cands, maps)] for `frames` random scenes; maps from the aggregation if present."""
    h, w = hw
    aggregate = _aggregation()
    out = []
    for f in range(frames):
        rng = np.random.default_rng(seed + f)
        scene = synthetic.random_people(rng, people, (w, h), border_gap=3.0, hidden_fraction=0.1)
        outputs = synthetic.render_outputs(scene, (w, h), 17, noise=0.01, rng=rng)
        flipped = synthetic.render_flipped_outputs(scene, (w, h), COCO, noise=0.01, rng=rng)
        if aggregate is not None:
            result = aggregate(outputs, flipped, (h, w))
            cands, maps = result.candidates, result.maps()
        else:
            cands, maps = synthetic.render_maps(scene, (w, h), 17, noise=0.01, rng=rng)
        out.append((outputs, flipped, cands, maps))
    return out


def _aggregation():
    try:
        numba_module = importlib.import_module("pose_stream.kernels.aggregate_numba")
        ref_module = importlib.import_module("pose_stream.kernels.aggregate_ref")
    except ImportError:
        return None

    def aggregate(outputs, flipped, base_hw):
        scale = ref_module.ScaleOutputs(tuple(outputs), tuple(flipped), 1.0)
        return numba_module.aggregate_numba([scale], COCO.flip_index, base_hw, PARAMS.max_people, 5)

    return aggregate


def timed(fn, inputs, repeats: int) -> float:
    """Median milliseconds of fn(x), rotating over inputs, after one warm-up call per input."""
    for x in inputs:
        fn(x)
    times = []
    for r in range(repeats):
        x = inputs[r % len(inputs)]
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def bench_config(people: int, hw: tuple[int, int], args) -> dict:
    frames = make_frames(people, hw, args.frames, seed=people * 1000 + hw[1])
    grouper = NumbaGrouper(COCO.visit_order, PARAMS)
    prepared = []
    for outputs, flipped, cands, maps in frames:
        neighbours = candidate_neighbours(maps.heatmaps, cands)
        matching = grouper.match(cands)
        prepared.append((outputs, flipped, cands, maps, neighbours, matching))

    def numba_match_adjust(p):
        matching = grouper.match(p[2])
        grouper.place(p[2], matching, p[4])

    def numba_refine(p):
        cands, maps, matching = p[2], p[3], p[5]
        keypoints, _ = grouper.place(cands, matching, p[4])
        request = grouper.refine_request(cands, matching)
        grouper.refine_apply(keypoints, request, grouper.refine_search(maps, cands, request))

    rows = {
        "baseline match": timed(lambda p: baseline_match(p[2]), prepared, max(3, args.repeats // 10)),
        "reference match": timed(lambda p: group_ref.match(p[2], COCO.visit_order, PARAMS), prepared,
                                 max(3, args.repeats // 5)),
        "numba match+adjust": timed(numba_match_adjust, prepared, args.repeats),
        "numba refine": timed(numba_refine, prepared, max(5, args.repeats // 5)),
        "numba group": timed(lambda p: grouper.group(p[2], p[3], neighbours=p[4]), prepared,
                             max(5, args.repeats // 5)),
    }
    rows["reference refine"], extrapolated = _reference_refine(prepared[0], args.ref_people)
    aggregate = _aggregation()
    if aggregate is not None:
        shape = (hw[0], hw[1])
        rows["numba aggregation"] = timed(lambda p: aggregate(p[0], p[1], shape), prepared,
                                          max(5, args.repeats // 5))
        decoder = Decoder(COCO, PARAMS)
        transform = Transform((hw[1] // 2, hw[0] // 2), (hw[1] / 200, hw[0] / 200), (hw[1], hw[0]), (hw[1], hw[0]))
        rows["decode"] = timed(lambda p: decoder.decode([ScaleResult(1.0, p[0], p[1])], transform), prepared,
                               max(5, args.repeats // 5))
    return {
        "people": people, "input_hw": list(hw), "decoded_people": int(prepared[0][5].num_people),
        "pending_joints": int((prepared[0][5].joints < 0).sum()), "ms": rows,
        "reference_refine_extrapolated": extrapolated,
    }


def _reference_refine(p, max_people: int) -> tuple[float, bool]:
    """The reference refines every joint of every person: time that on up to max_people people, scale."""
    cands, maps, matching = p[2], p[3], p[5]
    n = matching.num_people
    if n == 0:
        return 0.0, False
    request = group_ref.refine_request(cands, matching, maps)
    take = min(n, max_people)
    sample = RefineRequest(request.mean_tags[:take], np.ones((take, cands.num_joints), bool))
    start = time.perf_counter()
    group_ref.refine_search(maps, sample)
    return (time.perf_counter() - start) * 1e3 * n / take, take < n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 10, 30, 40])
    parser.add_argument("--sizes", nargs="+", default=["512x512", "512x960"], help="network input HxW")
    parser.add_argument("--repeats", type=int, default=100, help="timed runs of the fast paths")
    parser.add_argument("--frames", type=int, default=3, help="different synthetic frames to rotate over")
    parser.add_argument("--ref-people", type=int, default=3, help="people the reference refine is timed on")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/decode-DATE.json)")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. what was merged)")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]

    from tqdm import tqdm

    results = []
    for hw in sizes:
        for people in tqdm(args.people, desc=f"{hw[0]}x{hw[1]}", leave=False):
            results.append(bench_config(people, hw, args))

    names = list(results[0]["ms"])
    print(f"decode benchmark (median ms per frame; baseline Hungarian: {SOLVER_NAME}; "
          f"aggregation: {'numba' if _aggregation() else 'not on this branch, maps rendered directly'})")
    header = f"{'input':>8} {'people':>6} {'found':>5} " + " ".join(f"{n:>18}" for n in names)
    print(header)
    for r in results:
        cells = []
        for n in names:
            mark = "~" if n == "reference refine" and r["reference_refine_extrapolated"] else ""
            cells.append(f"{mark}{r['ms'][n]:.3f}".rjust(18))
        hw = f"{r['input_hw'][0]}x{r['input_hw'][1]}"
        print(f"{hw:>8} {r['people']:>6} {r['decoded_people']:>5} " + " ".join(cells))
    print("speed-up, matching (baseline match / numba match+adjust): "
          + ", ".join(f"{r['people']}p {r['input_hw'][1]}w: {r['ms']['baseline match'] / r['ms']['numba match+adjust']:.0f}x"
                      for r in results))
    print("speed-up, grouping ((reference match + reference refine) / numba group): "
          + ", ".join(f"{r['people']}p {r['input_hw'][1]}w: "
                      f"{(r['ms']['reference match'] + r['ms']['reference refine']) / r['ms']['numba group']:.0f}x"
                      for r in results))

    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"decode-{dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    import numba

    record = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                    "numba_threads": os.environ.get("NUMBA_NUM_THREADS")},
        "label": args.label,
        "baseline_hungarian": SOLVER_NAME,
        "aggregation_available": _aggregation() is not None,
        "results": results,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
