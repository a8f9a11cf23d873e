"""The one input-size rule: what `--input-size` means in every subcommand, and the multiple the network needs.

`S` (one number): the image's short side becomes S network pixels and the long side follows its aspect ratio
(the reference's resize: rounded up to a multiple of 64). For a subcommand with no image to follow
(`export`, `build-engine`, `train`, `recalibrate`) the input is S x S.
`HxW`: exactly H x W network pixels; an image is scaled to fit inside and centred, keeping its aspect ratio.
Every size is a multiple of `MULTIPLE` (the network halves its input five times).
"""
from __future__ import annotations

from dataclasses import dataclass

from pose_stream.errors import PoseStreamError

MULTIPLE = 32
SMALLEST = 64


def check_network_side(value: int, what: str = "input size") -> int:
    """`value` when it is a positive multiple of MULTIPLE (at least SMALLEST); PoseStreamError otherwise."""
    if not isinstance(value, int) or value < SMALLEST or value % MULTIPLE:
        raise PoseStreamError(f"bad {what} {value!r}: it must be a multiple of {MULTIPLE}, at least {SMALLEST} "
                              "(e.g. 256, 512, 640)")
    return value


@dataclass(frozen=True)
class InputSize:
    """A network input size: `short` (S) or `exact` (H, W), exactly one of them.

    Attributes:
        short: the network size of the image's short side.
        exact: (height, width) of the network input.
    """

    short: int | None = None
    exact: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if (self.short is None) == (self.exact is None):
            raise PoseStreamError("an input size is S or HxW, exactly one of them")
        if self.short is not None:
            check_network_side(self.short)
        else:
            h, w = self.exact
            check_network_side(h, "input height")
            check_network_side(w, "input width")

    @classmethod
    def parse(cls, text: str | int | "InputSize", option: str = "--input-size") -> "InputSize":
        """'512' -> S = 512; '512x960' -> exactly 512 high and 960 wide (an int or an InputSize pass through)."""
        if isinstance(text, InputSize):
            return text
        parts = str(text).strip().lower().split("x")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2):
            raise PoseStreamError(f"bad {option} {text!r}: expected S or HEIGHTxWIDTH, such as 512 or 512x960")
        if any(n < SMALLEST or n % MULTIPLE for n in numbers):
            what = "it must be a multiple" if len(numbers) == 1 else "height and width must be multiples"
            raise PoseStreamError(f"bad {option} {str(text).strip()}: {what} of {MULTIPLE}, at least {SMALLEST} "
                                  "(e.g. 512, 640 or 512x960)")
        return cls(short=numbers[0]) if len(numbers) == 1 else cls(exact=(numbers[0], numbers[1]))

    @property
    def hw(self) -> tuple[int, int]:
        """(H, W) where no image decides the shape: `exact`, or S x S."""
        return self.exact if self.exact is not None else (self.short, self.short)

    @property
    def smaller_side(self) -> int:
        return self.short if self.short is not None else min(self.exact)

    def __str__(self) -> str:
        return str(self.short) if self.short is not None else f"{self.exact[0]}x{self.exact[1]}"


def parse_input_sizes(text: str, option: str = "--input-size") -> tuple[InputSize, ...]:
    """A comma-separated list of sizes ('512x960,512,640x640')."""
    sizes = tuple(InputSize.parse(part, option) for part in text.split(",") if part.strip())
    if not sizes:
        raise PoseStreamError(f"{option} needs at least one size")
    return sizes


def square_side(text: str | int | None, option: str = "--input-size", what: str = "training") -> int | None:
    """S for subcommands whose inputs are square (training crops): S, or HxW with H = W; None passes through."""
    if text is None:
        return None
    size = InputSize.parse(text, option)
    h, w = size.hw
    if h != w:
        raise PoseStreamError(f"{option} {size}: {what} inputs are square; give S (or HxW with H = W)")
    return h
