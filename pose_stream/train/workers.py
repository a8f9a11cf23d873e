"""Set-up for the worker processes that render scenes (`synth --workers`) and load batches (`train --workers`)."""
from __future__ import annotations

import cv2


def one_opencv_thread(_worker_id: int | None = None) -> None:
    """Process initializer (Pool) and DataLoader `worker_init_fn`: one OpenCV thread per worker.

    OpenCV starts a thread per core in every process, so N workers run N x cores threads: rendering with 16
    processes on a 16-core machine showed a load average of 92.
    """
    cv2.setNumThreads(1)
