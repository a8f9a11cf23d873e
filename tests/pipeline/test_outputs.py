"""Nothing a user owns is destroyed: output paths are checked before a run, and written so that a failed run
never replaces a good file (`pose_stream.pipeline.outputs`, `pose_stream.atomic`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_fakes import CollectSink, FakeEstimator, write_video
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline import CocoResultsSink, JsonLinesSink, Pipeline, VideoSink, open_source
from pose_stream.pipeline.outputs import check_outputs

SINKS = {"--json": JsonLinesSink, "--save": VideoSink, "--coco-results": CocoResultsSink}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    video = write_video(tmp_path / "walk.mp4", 3)
    (tmp_path / "plain_file").write_text("x")
    (tmp_path / "old.jsonl").write_text("old\n")
    (tmp_path / "left.partial.jsonl").write_text("a line of an earlier run\n")
    (tmp_path / "a_folder.json").mkdir()
    (tmp_path / "model.onnx").write_bytes(b"\0")
    os.link(video, tmp_path / "hardlink.jsonl")
    return {"video": video, "dir": tmp_path}


# (option, output name, other sinks, fragments of the one-line error); None: accepted
CASES = [
    ("--json", "walk.mp4", [], ["--json", "unknown file extension ('.mp4')"]),
    ("--save", "walk.mp4", [], ["is also an input", "walk.mp4"]),
    ("--json", "hardlink.jsonl", [], ["is also an input"]),                   # the same file under another name
    ("--save", "model.onnx", [], ["unknown file extension"]),
    ("--json", "model.onnx", [], ["unknown file extension"]),
    ("--save", "out", [], ["--save", "unknown file extension (none)", ".mp4"]),
    ("--json", "out.txt", [], ["--json", "unknown file extension ('.txt')"]),
    ("--json", "plain_file/x.jsonl", [], ["plain_file is a file, not a folder"]),
    ("--json", "missing/x.jsonl", [], ["folder", "missing does not exist"]),
    ("--json", "old.jsonl", [], ["old.jsonl already exists", "--overwrite"]),
    ("--json", "left.jsonl", [], ["left.partial.jsonl exists", "--overwrite"]),
    ("--coco-results", "a_folder.json", [], ["is a folder"]),
    ("--json", "same.json", [("--coco-results", "same.json")], ["would both write", "same.json"]),
    ("--json", "new.jsonl", [("--save", "new.mp4")], None),
]


@pytest.mark.parametrize("option, name, others, fragments", CASES)
def test_check_outputs(files, option, name, others, fragments):
    directory = files["dir"]
    coco = "--coco-results" in [option, *(o for o, _ in others)]
    source = None if coco else open_source(str(files["video"]))

    def make():
        sinks = [SINKS[option](directory / name)]
        sinks += [SINKS[o](directory / n) for o, n in others]
        sources = [source] if source else [open_source(str(_images(directory)))]
        check_outputs(sinks, sources, other_inputs=[directory / "model.onnx"])

    if fragments is None:
        make()
        return
    with pytest.raises(PoseStreamError) as err:
        make()
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def _images(directory: Path) -> Path:
    import cv2
    import numpy as np

    folder = directory / "images"
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "1.png"), np.zeros((8, 8, 3), np.uint8))
    return folder


def test_overwrite_replaces_outputs_but_never_inputs(files):
    directory = files["dir"]
    source = open_source(str(files["video"]))
    check_outputs([JsonLinesSink(directory / "old.jsonl", overwrite=True)], [source])
    check_outputs([JsonLinesSink(directory / "left.jsonl", overwrite=True)], [source])
    for sink in (JsonLinesSink(directory / "hardlink.jsonl", overwrite=True), VideoSink(files["video"], overwrite=True)):
        with pytest.raises(PoseStreamError, match="is also an input"):
            check_outputs([sink], [source])


def test_a_video_per_source_is_checked(files):
    directory = files["dir"]
    write_video(directory / "out_1.mp4", 1)
    sources = [open_source(str(files["video"])), open_source(str(files["video"]))]
    with pytest.raises(PoseStreamError, match="out_1.mp4 already exists"):
        check_outputs([VideoSink(directory / "out.mp4")], sources)


def test_a_pipeline_checks_its_outputs_before_it_reads_a_frame(files):
    estimator = FakeEstimator()
    source = open_source(str(files["video"]))
    before = files["video"].read_bytes()
    with pytest.raises(PoseStreamError, match="is also an input"):
        Pipeline(estimator, [source], [VideoSink(files["video"])]).run()
    assert files["video"].read_bytes() == before and estimator.calls["infer"] == 0


def test_a_failed_run_keeps_the_old_file_and_its_partial_output(tmp_path, image_folder):
    good = tmp_path / "results.json"
    good.write_text('[{"image_id": 1}]')
    jsonl = tmp_path / "poses.jsonl"
    jsonl.write_text("old run\n")
    paths = sorted(image_folder.glob("*.png"))
    paths[3].write_bytes(b"not a png")
    coco, lines = CocoResultsSink(good, overwrite=True), JsonLinesSink(jsonl, overwrite=True)
    with pytest.raises(PoseStreamError, match="cannot read image"):
        Pipeline(FakeEstimator(), [open_source(str(image_folder), strict=True)], [coco, lines]).run()
    assert good.read_text() == '[{"image_id": 1}]' and jsonl.read_text() == "old run\n"
    assert coco.kept == [tmp_path / "results.partial.json"] and lines.kept == [tmp_path / "poses.partial.jsonl"]
    assert len((tmp_path / "poses.partial.jsonl").read_text().splitlines()) == 3  # the three good images


def test_a_completed_run_replaces_with_overwrite_and_reports_what_it_wrote(tmp_path, image_folder):
    jsonl = tmp_path / "poses.jsonl"
    jsonl.write_text("old run\n")
    sink = JsonLinesSink(jsonl, overwrite=True)
    Pipeline(FakeEstimator(), [open_source(str(image_folder))], [sink, CollectSink()]).run()
    assert len(jsonl.read_text().splitlines()) == 6 and sink.written == [jsonl] and sink.kept == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "poses.jsonl"]
