"""The streaming pipeline: sources -> prepare + infer -> aggregate -> group -> track -> sinks, one thread per stage
(tracking runs in the output stage, per source). May import: OpenCV and pose_stream.{poses, joints, tracking,
synthetic, redact, atomic, errors}; estimators come in through
the StageEstimator protocol, so not engine/, models/ or train/.
"""
from __future__ import annotations

from pose_stream.pipeline.frames import Frame, FrameResult
from pose_stream.pipeline.config import PipelineConfig, PipelineError
from pose_stream.pipeline.pipeline import Pipeline
from pose_stream.pipeline.protocols import StageEstimator
from pose_stream.pipeline.render import draw_overlay, draw_poses, gui_available
from pose_stream.pipeline.sinks import CocoResultsSink, JsonLinesSink, Sink, SinkContext, VideoSink, WindowSink
from pose_stream.pipeline.sources import (
    GeneratedSource, ImageSequenceSource, LiveOptions, LiveSource, ReconnectPolicy, Source, SourceState,
    VideoFileSource, demo_frames, mask_credentials, open_source,
)
from pose_stream.pipeline.stats import PipelineStats

__all__ = [
    "CocoResultsSink", "Frame", "FrameResult", "GeneratedSource", "ImageSequenceSource", "JsonLinesSink",
    "LiveOptions", "LiveSource", "Pipeline", "PipelineConfig", "PipelineError", "PipelineStats", "ReconnectPolicy",
    "Sink", "SinkContext", "Source", "SourceState", "StageEstimator", "VideoFileSource", "VideoSink", "WindowSink",
    "demo_frames", "draw_overlay", "draw_poses", "gui_available", "mask_credentials", "open_source",
]
