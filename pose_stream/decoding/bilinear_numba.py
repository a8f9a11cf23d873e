"""torch's bilinear resize (align_corners=False) in Numba, with the reference's arithmetic bit for bit.

The arithmetic contract is in `aggregate_ref` (module docstring): per axis the tables of `axis_weights`,
the horizontal pass first, `fma` rounded once. Shared by the aggregation (whole rows) and by refine and the
candidates (single pixels, `value_at`), so that both give the value the full-resolution map would hold.

Loops use unsigned indices where an index could be negative to Numba's eyes, so that LLVM vectorises them
(Numba's negative-index wraparound stops it).
"""
from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba import uint64 as _u
from numba.core import cgutils
from numba.extending import intrinsic

from pose_stream.decoding.aggregate_ref import axis_weights

_F32 = np.float32


@intrinsic
def fma(typingctx, a, b, c):
    """float32 fused multiply-add (llvm.fma.f32): rounded once, as the reference's fma32."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3), "llvm.fma.f32")
        return builder.call(fn, args)

    return sig, codegen


# ------------------------------------------------------------------------------------------- tables


def _contiguous(weights) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.ascontiguousarray(a) for a in weights)  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def row_tables(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, l0, l1) of `aggregate_ref.axis_weights` as contiguous arrays (cached per size pair)."""
    return _contiguous(axis_weights(n_in, n_out))


@functools.lru_cache(maxsize=8)
def identity_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tables that read a map as it is: fma(v, 1, v * 0) is v for every finite v."""
    index = np.arange(n, dtype=np.int32)
    return index, index.copy(), np.ones(n, _F32), np.zeros(n, _F32)


@functools.lru_cache(maxsize=64)
def column_plan(n_in: int, n_out: int) -> tuple:
    """Column tables plus, for an upsampling by 1, 2 or 4, its periodic interior [j_lo, j_hi): there output
    column f*j + r reads source columns j + a[r], j + b[r] with weights w0[r], w1[r]. Every column of the
    interior is checked against the tables, so the fast loop computes exactly the tables' values."""
    i0, i1, l0, l1 = row_tables(n_in, n_out)
    factor = n_out // n_in
    a = np.zeros(4, np.int64)
    b = np.zeros(4, np.int64)
    w0 = np.zeros(4, _F32)
    w1 = np.zeros(4, _F32)
    j_lo = j_hi = 0
    if factor in (1, 2, 4) and factor * n_in == n_out:
        mid = n_in // 2
        cols = factor * mid + np.arange(factor)
        a[:factor], b[:factor] = i0[cols] - mid, i1[cols] - mid
        w0[:factor], w1[:factor] = l0[cols], l1[cols]
        j = np.arange(n_in)[:, None]
        periodic = np.all(
            (i0.reshape(n_in, factor) == j + a[:factor])
            & (i1.reshape(n_in, factor) == j + b[:factor])
            & (l0.reshape(n_in, factor) == w0[:factor])
            & (l1.reshape(n_in, factor) == w1[:factor]),
            axis=1,
        )
        j_lo, j_hi = mid, mid + 1
        while j_lo > 0 and periodic[j_lo - 1]:
            j_lo -= 1
        while j_hi < n_in and periodic[j_hi]:
            j_hi += 1
    else:
        factor = 0
    return (i0, i1, l0, l1, factor, j_lo, j_hi, a, b, w0, w1)


# ------------------------------------------------------------------------------------------- resizing


@njit(cache=True, nogil=True)
def resize_row(s, plan, o):
    """Horizontal pass of one row: o[x] = fma(s[i0[x]], l0[x], s[i1[x]] * l1[x]).

    Inside the periodic interior of an integer upsampling the same values come phase by phase from
    contiguous loads, which vectorises; the border columns use the tables directly.
    """
    i0, i1, l0, l1, factor, j_lo, j_hi, a, b, w0, w1 = plan
    n_out = o.shape[0]
    # Phase constants as scalars: read from arrays, LLVM would reload them after every store.
    a0, a1, a2, a3 = a[0], a[1], a[2], a[3]
    b0, b1, b2, b3 = b[0], b[1], b[2], b[3]
    u0, u1, u2, u3 = w0[0], w0[1], w0[2], w0[3]
    v0, v1, v2, v3 = w1[0], w1[1], w1[2], w1[3]
    for x in range(0, factor * j_lo):
        o[x] = fma(s[i0[x]], l0[x], s[i1[x]] * l1[x])
    for x in range(factor * j_hi, n_out):
        o[x] = fma(s[i0[x]], l0[x], s[i1[x]] * l1[x])
    if factor == 1:
        for j in range(j_lo, j_hi):
            o[_u(j)] = fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
    elif factor == 2:
        for j in range(j_lo, j_hi):
            o[_u(2 * j)] = fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
            o[_u(2 * j + 1)] = fma(s[_u(j + a1)], u1, s[_u(j + b1)] * v1)
    elif factor == 4:
        for j in range(j_lo, j_hi):
            o[_u(4 * j)] = fma(s[_u(j + a0)], u0, s[_u(j + b0)] * v0)
            o[_u(4 * j + 1)] = fma(s[_u(j + a1)], u1, s[_u(j + b1)] * v1)
            o[_u(4 * j + 2)] = fma(s[_u(j + a2)], u2, s[_u(j + b2)] * v2)
            o[_u(4 * j + 3)] = fma(s[_u(j + a3)], u3, s[_u(j + b3)] * v3)


@njit(cache=True, nogil=True)
def blend(upper, lower, w_upper, w_lower, out):
    """Vertical pass for one output row: out[x] = fma(upper[x], w_upper, lower[x] * w_lower)."""
    for x in range(out.shape[0]):
        out[x] = fma(upper[x], w_upper, lower[x] * w_lower)


@njit(cache=True, nogil=True)
def value_at(plane, rows, cols, y, x):
    """The resize of one (h, w) plane, (rows, cols) its tables, at output pixel (y, x): the value the resized
    map holds there (horizontal pass first, then vertical, as `resize_row` and `blend`)."""
    r0, r1, m0, m1 = rows[0][y], rows[1][y], rows[2][y], rows[3][y]
    c0, c1, l0, l1 = cols[0][x], cols[1][x], cols[2][x], cols[3][x]
    upper = fma(plane[r0, c0], l0, plane[r0, c1] * l1)
    lower = fma(plane[r1, c0], l0, plane[r1, c1] * l1)
    return fma(upper, m0, lower * m1)
