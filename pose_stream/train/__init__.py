"""Training HigherHRNet: COCO-format datasets (ours from the synthetic world, or COCO), augmentation, targets,
losses, the loop, BatchNorm recalibration. May import: torch and pose_stream.{models, synthetic, decoding,
coco_format, devices, errors}; not engine/ or pipeline/.
"""
