"""The one atomic writer (`pose_stream.atomic`): a failed or interrupted write never leaves half a file under the
final name, and a failed run never replaces an existing output."""
from __future__ import annotations

import os

import pytest

from pose_stream import atomic
from pose_stream.atomic import PartialFile, atomic_path, partial_path, write_bytes_atomic


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "file.bin"
    write_bytes_atomic(target, b"old")
    assert target.read_bytes() == b"old"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new content")
    assert target.read_bytes() == b"old"
    assert os.listdir(target.parent) == ["file.bin"]  # no temporary file left behind


def test_atomic_path_keeps_the_extension_and_removes_the_temporary_file_on_error(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".onnx" and tmp != target
        tmp.write_bytes(b"half")
        raise RuntimeError("export failed")
    assert target.read_bytes() == b"good" and os.listdir(tmp_path) == ["model.onnx"]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.parametrize("name, partial", [("poses.jsonl", "poses.partial.jsonl"), ("a.b.mp4", "a.b.partial.mp4"),
                                           ("results.json", "results.partial.json")])
def test_partial_path_keeps_the_extension_last(tmp_path, name, partial):
    assert partial_path(tmp_path / name) == tmp_path / partial


def test_partial_file_commits_on_success_and_keeps_on_failure(tmp_path):
    target = tmp_path / "poses.jsonl"
    target.write_text("old run\n")
    failed = PartialFile(target)
    failed.partial.write_text("half of a new run\n")
    failed.finish(success=False)
    assert failed.state == "kept" and target.read_text() == "old run\n"  # the good file is not replaced
    assert failed.partial.read_text() == "half of a new run\n"  # and the new work is not lost

    done = PartialFile(target)
    done.partial.write_text("new run\n")
    done.finish(success=True)
    done.finish(success=False)  # once only
    assert done.state == "written" and target.read_text() == "new run\n" and not done.partial.exists()


def test_partial_file_that_holds_nothing_is_not_kept(tmp_path):
    empty = PartialFile(tmp_path / "out.mp4")
    empty.partial.write_bytes(b"")
    empty.finish(success=False)
    assert empty.state == "empty" and os.listdir(tmp_path) == []
    never = PartialFile(tmp_path / "out.mp4")
    never.finish(success=True)
    assert never.state == "empty" and os.listdir(tmp_path) == []
