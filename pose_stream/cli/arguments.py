"""Option types shared by the subcommands: numbers that must be finite and in range, device names.

Each is an argparse `type=`: a bad value becomes one line naming the option, the allowed values and what was
given (`pose-stream run: error: argument --timeout: must be a finite number > 0, not 'nan'`).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from pose_stream.devices import check_device_name
from pose_stream.errors import PoseStreamError


def _number(kind: type, low: float | None, low_inclusive: bool, description: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {description}, not {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {description}, not {text!r}")
        if low is not None and (value < low or (value == low and not low_inclusive)):
            raise argparse.ArgumentTypeError(f"must be {description}, not {text!r}")
        return value

    parse.__name__ = description  # argparse names the type in some messages
    return parse


finite_float = _number(float, None, True, "a finite number")
positive_float = _number(float, 0.0, False, "a finite number > 0")
non_negative_float = _number(float, 0.0, True, "a finite number >= 0")
positive_int = _number(int, 1, True, "a whole number >= 1")
non_negative_int = _number(int, 0, True, "a whole number >= 0")


def at_least(low: float) -> Callable[[str], float]:
    """A finite float >= low."""
    return _number(float, low, True, f"a finite number >= {low:g}")


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N."""
    try:
        return check_device_name(text)
    except PoseStreamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) that points at --help; exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
