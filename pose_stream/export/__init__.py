"""Model export: PyTorch -> ONNX (verified)."""
from pose_stream.export.onnx_export import (
    ALLOWED_OPS, INPUT_NAME, OUTPUT_NAMES, ExportError, ExportReport, compare_outputs, export_onnx, verify_onnx,
)

__all__ = [
    "ALLOWED_OPS", "INPUT_NAME", "OUTPUT_NAMES", "ExportError", "ExportReport", "compare_outputs", "export_onnx",
    "verify_onnx",
]
