"""`--serve` addresses: PORT, :PORT or HOST:PORT (IPv6 hosts in brackets), on 127.0.0.1 unless a host is given."""
from __future__ import annotations

import ipaddress

from pose_stream.errors import PoseStreamError

DEFAULT_HOST = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of a --serve value; PoseStreamError (one line) when it is not one."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise PoseStreamError(f"--serve {text!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise PoseStreamError(f"--serve {text!r}: expected PORT or HOST:PORT with a port from 1 to 65535")
    host = host or DEFAULT_HOST
    if not _valid_host(host):
        raise PoseStreamError(f"--serve {text!r}: {host!r} is not an IP address or host name")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(label and len(label) < 64 and label.replace("-", "").isalnum() and not label.startswith("-")
                   for label in labels)
