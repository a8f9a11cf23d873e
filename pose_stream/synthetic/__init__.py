"""The synthetic world: articulated figures, their poses and motion, rendering, animated scenes, and the network
outputs known people would produce. May import: numpy, OpenCV, pose_stream.{joints, errors, decoding}; not torch,
engine/, pipeline/ or train/ (the demo source, training, benchmarks and tests all build on it).

`figure.py` (skeletons in 3-D, proportions, projection), `poses.py` (walking and random poses), `render.py`
(drawing people with visibility), `background.py`, `animation.py` (the demo's clip), `outputs.py` (heatmaps and
tags of known people, for decoding tests and benchmarks).
"""
