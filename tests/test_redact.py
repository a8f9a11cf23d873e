"""One URL-masking function for every log line, error, overlay, JSON record and benchmark file."""
from __future__ import annotations

import json
import logging

import pytest

from pose_stream.redact import MaskingFilter, mask_credentials, mask_in, mask_url

URLS = [
    # (what the user typed, what may be shown)
    ("rtsp://admin:s3cr3t@10.0.0.7:554/stream1", "rtsp://***@10.0.0.7:554/stream1"),
    ("rtsp://admin@cam/live", "rtsp://***@cam/live"),
    ("rtsp://user:p@ss@cam.local/s", "rtsp://***@cam.local/s"),                 # '@' in the password
    ("rtsp://user:p@ss:w@rd@cam.local:8554/s", "rtsp://***@cam.local:8554/s"),   # several
    ("rtsp://user:pa/ss@cam.local/s", "rtsp://***@cam.local/s"),                 # '/' in the password
    ("rtsp://user:pa/ss@cam.local:554/s?apikey=1", "rtsp://***@cam.local:554/s?apikey=***"),
    ("rtsp://u:12?34@cam/s", "rtsp://***@cam/s"),                                # '?' in the password
    ("rtsp://u:p#ss@cam/s", "rtsp://***@cam/s"),                                 # '#' in the password
    ("rtsp://u:p ss@cam/s", "rtsp://***@cam/s"),                                 # a space in the password
    ("https://u:p%40ss@host/x", "https://***@host/x"),                           # percent-encoded
    ("https://cam/mjpg?token=abc123&channel=2", "https://cam/mjpg?token=***&channel=2"),
    ("https://cam/mjpg?access_token=abc&ch=1#view", "https://cam/mjpg?access_token=***&ch=1#view"),
    ("http://h/p?X-Amz-Signature=abc&X-Amz-Credential=c&w=2", "http://h/p?X-Amz-Signature=***&X-Amz-Credential=***&w=2"),
    ("rtsp://cam/s?password=x&auth=y&key=z&sig=q&secret=w", "rtsp://cam/s?password=***&auth=***&key=***&sig=***&secret=***"),
    ("rtsp://u:p@ss@cam/live?contact=ops@example.com&token=t", "rtsp://***@cam/live?contact=ops@example.com&token=***"),
    ("rtsp://cam/live?contact=ops@example.com", "rtsp://cam/live?contact=ops@example.com"),  # no user info
    ("rtsp://10.0.0.7:554/stream1", "rtsp://10.0.0.7:554/stream1"),
    ("rtsp://cam/s?channel=1&subtype=0", "rtsp://cam/s?channel=1&subtype=0"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ("demo", "demo"),
]


@pytest.mark.parametrize("url, shown", URLS)
def test_mask_url(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize("url, shown", [(u, s) for u, s in URLS if " " not in u])
def test_urls_inside_text_are_masked(url, shown):
    assert mask_credentials(f"cannot connect to {url} after 3 attempts") == f"cannot connect to {shown} after 3 attempts"


def test_several_urls_in_one_text():
    text = "open https://u:p%40ss@host/x and rtsp://a:b@c/d?token=t"
    assert mask_credentials(text) == "open https://***@host/x and rtsp://***@c/d?token=***"


def test_json_like_values_are_masked_everywhere():
    report = {"settings": {"command": "pose-stream bench --video rtsp://u:p@ss@h/s", "video": "rtsp://u:p@ss@h/s"},
              "rows": [{"source": "https://h/x?token=abc"}], "frames": 3}
    text = json.dumps(mask_in(report))
    assert "p@ss" not in text and "abc" not in text and json.loads(text)["frames"] == 3


def test_log_filter_masks_formatted_records():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "source %s: %s", ("rtsp://u:p@ss@h/s", "down"), None)
    assert MaskingFilter().filter(record) and record.getMessage() == "source rtsp://***@h/s: down"
