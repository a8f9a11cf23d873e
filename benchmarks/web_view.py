"""Does watching cost the pipeline anything? Pipeline FPS with the live view served to browser tabs, and without.

    python benchmarks/web_view.py                      # 4 sources, 3 Chromium tabs, the demo model
    python benchmarks/web_view.py --frames 60 --tabs 3 --sources 4 --name quick

Runs the same work three times (each source a demo clip played as a file: every frame, as fast as the pipeline
goes, so FPS measures the pipeline's capacity): without --serve; with the live view and nobody watching; with
the live view open in --tabs Chromium tabs (each tab shows every source's MJPEG stream), driven by Playwright.
Prints a table; writes JSON under benchmarks/results/. Needs Chromium (apt-get install -y chromium) and
Playwright for Python.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--tabs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100, help="frames per source (default: %(default)s)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--name", default=None, help="JSON file stem (default: web-view-DATE)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if not args.chromium:
        parser.error("no Chromium found: apt-get install -y chromium, or pass --chromium PATH")

    runs = {}
    for label, serve, tabs in (("no live view", False, 0), ("live view, nobody watching", True, 0),
                               (f"live view, {args.tabs} tabs", True, args.tabs)):
        runs[label] = _run(args, serve, tabs)
        r = runs[label]
        print(f"{label:<28} {r['fps']:6.2f} FPS  latency p50 {r['latency_p50_ms']:.0f} ms  "
              f"streams {r['streams']}  JPEG frames sent {r['frames_sent']}", flush=True)
    base = runs["live view, nobody watching"]["fps"]
    watched = runs[f"live view, {args.tabs} tabs"]["fps"]
    result = {"date": datetime.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
              "settings": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
              "fps_change_with_tabs_pct": round(100 * (watched / base - 1), 2),
              "fps_change_of_live_view_pct": round(100 * (base / runs["no live view"]["fps"] - 1), 2)}
    print(f"FPS with {args.tabs} tabs watching vs nobody: {result['fps_change_with_tabs_pct']:+.1f}%; "
          f"live view (rendering included) vs none: {result['fps_change_of_live_view_pct']:+.1f}%")
    out = args.out_dir / f"{args.name or 'web-view-' + result['date']}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _run(args, serve: bool, tabs: int) -> dict:
    from pose_stream.estimator import PoseEstimator
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path
    from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig
    from pose_stream.pipeline.sources.demo import seeded_demo
    from pose_stream.tracking import TrackingConfig
    from pose_stream.web import LiveView, WebServer

    # the clips are rendered before timing (the scene's renderer is not what is measured)
    clips = [list(seeded_demo(seed)(args.frames, (640, 360))) for seed in range(args.sources)]
    sources = [GeneratedSource(args.frames, (640, 360), source_id=f"cam{i}",
                               frames=lambda n, size, clip=clip: iter(clip[:n])) for i, clip in enumerate(clips)]
    estimator = PoseEstimator(DEMO_MODEL_NAME, weights=str(demo_model_path()), input_size=DEMO_INPUT_SIZE,
                              device="cpu")
    view = LiveView(sources) if serve else None
    pipeline = Pipeline(estimator, sources, [view] if view else [], PipelineConfig(tracking=TrackingConfig()))
    server = WebServer(view, "127.0.0.1", 0) if view else None
    watchers: list = []
    done = threading.Event()
    if server is not None:
        server.start()
    try:
        if tabs:
            ready = threading.Event()
            watcher = threading.Thread(target=_watch, args=(args.chromium, server.url, tabs, ready, done),
                                       daemon=True)
            watcher.start()
            watchers.append(watcher)
            ready.wait(120)
        streams = server.streams if server else 0
        stats = pipeline.run()
    finally:
        done.set()
        for watcher in watchers:
            watcher.join(60)
        if server is not None:
            server.stop()
    latency = stats.latency.percentiles([50])[0]
    return {"fps": round(stats.fps, 3), "frames": stats.frames, "latency_p50_ms": round(1000 * latency, 1),
            "streams": streams, "frames_sent": server.frames_sent if server else 0}


def _watch(chromium: str, url: str, tabs: int, ready: threading.Event, done: threading.Event) -> None:
    """Open `tabs` tabs on the page and keep them open until `done`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        pages = [browser.new_page() for _ in range(tabs)]
        for page in pages:
            page.goto(url)
            page.wait_for_selector(".card img")
        time.sleep(1.0)  # the streams are open
        ready.set()
        done.wait()
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
