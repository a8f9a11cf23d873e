"""Synthetic people, COCO-format training and the bundled demo model."""
