"""Model export: PyTorch -> ONNX (checked, and verified against PyTorch with ONNX Runtime).
May import: torch, onnx, onnxruntime and pose_stream.{models, atomic, errors}; not engine/, pipeline/ or train/.
"""
from pose_stream.export.onnx_export import (
    ALLOWED_OPS, INPUT_NAME, OUTPUT_NAMES, ExportError, ExportReport, compare_outputs, export_onnx, verify_onnx,
)

__all__ = [
    "ALLOWED_OPS", "INPUT_NAME", "OUTPUT_NAMES", "ExportError", "ExportReport", "compare_outputs", "export_onnx",
    "verify_onnx",
]
