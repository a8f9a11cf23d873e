"""Minimum-cost assignment (Hungarian method) in Numba, with the tie-breaking of the reference.

The reference grouping solves its assignments with the `munkres` package (Munkres' algorithm in the
textbook six-step form). Cost matrices in grouping are full of ties (costs are rounded distances * 100 minus
a per-row value), and which of several optimal assignments is returned decides whether a joint joins a
person or starts a new one. So this solver follows the same steps in the same scan order, with the same
float64 arithmetic, and returns the same assignment; it is O(n^3) in practice for the n <= 30 of grouping.

Step order (on the square matrix padded with zero rows or columns):
1. subtract each row's minimum; 2. star the first uncovered zero of each row, row-major;
3. cover the starred columns, done when n are covered; 4. prime uncovered zeros, scanning cyclically from the
last primed position and taking the last uncovered zero of the first row that has one; a primed zero with
a star in its row covers the row and uncovers the star's column; 5. flip the alternating prime/star path
from a prime without a star in its row; 6. add the smallest uncovered value to covered rows and subtract
it from uncovered columns.
"""
from __future__ import annotations

import numba
import numpy as np

# The initial "smallest uncovered value" of the reference (sys.maxsize), as a float.
_NO_MINIMUM = 9.223372036854775807e18


@numba.njit(cache=True, nogil=True)
def munkres_into(
    cost: np.ndarray,
    work: np.ndarray,
    star_in_row: np.ndarray,
    star_in_col: np.ndarray,
    prime_in_row: np.ndarray,
    row_covered: np.ndarray,
    col_covered: np.ndarray,
    path: np.ndarray,
    col_of_row: np.ndarray,
) -> None:
    """Solve min-cost assignment of cost (R, C) float64 into col_of_row[:R] (-1: matched to padding).

    Workspaces (n = max(R, C) at least): work float64 (n, n), star_in_row/star_in_col/prime_in_row
    int64 (n,), row_covered/col_covered bool (n,), path int64 (2n, 2). Nothing is allocated.
    """
    n_rows, n_cols = cost.shape
    n = max(n_rows, n_cols)
    for i in range(n):
        for j in range(n):
            work[i, j] = cost[i, j] if (i < n_rows and j < n_cols) else 0.0
        star_in_row[i] = -1
        star_in_col[i] = -1
        prime_in_row[i] = -1
        row_covered[i] = False
        col_covered[i] = False

    # Step 1: row reduction.
    for i in range(n):
        minimum = work[i, 0]
        for j in range(1, n):
            if work[i, j] < minimum:
                minimum = work[i, j]
        for j in range(n):
            work[i, j] -= minimum

    # Step 2: greedy stars, row-major.
    for i in range(n):
        for j in range(n):
            if work[i, j] == 0.0 and not col_covered[j] and not row_covered[i]:
                star_in_row[i] = j
                star_in_col[j] = i
                col_covered[j] = True
                row_covered[i] = True
                break
    for i in range(n):
        row_covered[i] = False
        col_covered[i] = False

    while True:
        # Step 3: cover starred columns.
        count = 0
        for j in range(n):
            if star_in_col[j] >= 0:
                col_covered[j] = True
                count += 1
        if count >= n:
            break

        # Steps 4 and 6 alternate until step 4 finds a prime without a star in its row.
        z_row = -1
        z_col = -1
        while z_row < 0:
            row = 0
            col = 0
            while True:
                row, col = _find_uncovered_zero(work, n, row, col, row_covered, col_covered)
                if row < 0:
                    break
                prime_in_row[row] = col
                star_col = star_in_row[row]
                if star_col >= 0:
                    col = star_col
                    row_covered[row] = True
                    col_covered[star_col] = False
                else:
                    z_row = row
                    z_col = col
                    break
            if z_row >= 0:
                break
            # Step 6.
            minimum = _NO_MINIMUM
            for i in range(n):
                if row_covered[i]:
                    continue
                for j in range(n):
                    if not col_covered[j] and minimum > work[i, j]:
                        minimum = work[i, j]
            for i in range(n):
                for j in range(n):
                    if row_covered[i]:
                        work[i, j] += minimum
                    if not col_covered[j]:
                        work[i, j] -= minimum

        # Step 5: augmenting path of alternating primes (even entries) and stars (odd entries).
        length = 1
        path[0, 0] = z_row
        path[0, 1] = z_col
        while True:
            star_row = star_in_col[path[length - 1, 1]]
            if star_row < 0:
                break
            path[length, 0] = star_row
            path[length, 1] = path[length - 1, 1]
            path[length + 1, 0] = star_row
            path[length + 1, 1] = prime_in_row[star_row]
            length += 2
        for k in range(1, length, 2):  # unstar first, so star bookkeeping stays one-per-line
            star_in_row[path[k, 0]] = -1
            star_in_col[path[k, 1]] = -1
        for k in range(0, length, 2):
            star_in_row[path[k, 0]] = path[k, 1]
            star_in_col[path[k, 1]] = path[k, 0]
        for i in range(n):
            row_covered[i] = False
            col_covered[i] = False
            prime_in_row[i] = -1

    for i in range(n_rows):
        j = star_in_row[i]
        col_of_row[i] = j if j < n_cols else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _find_uncovered_zero(work, n, row0, col0, row_covered, col_covered):
    # Scan rows cyclically from row0; in the first row holding an uncovered zero, return the LAST such zero
    # in cyclic column order from col0 (the reference keeps scanning the row after a hit).
    i = row0
    while True:
        if not row_covered[i]:
            found = -1
            j = col0
            while True:
                if work[i, j] == 0.0 and not col_covered[j]:
                    found = j
                j += 1
                if j == n:
                    j = 0
                if j == col0:
                    break
            if found >= 0:
                return i, found
        i += 1
        if i == n:
            i = 0
        if i == row0:
            return -1, -1


class MunkresWorkspace:
    """Pre-allocated buffers for munkres_into, for matrices up to size x size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.work = np.empty((size, size), np.float64)
        self.star_in_row = np.empty(size, np.int64)
        self.star_in_col = np.empty(size, np.int64)
        self.prime_in_row = np.empty(size, np.int64)
        self.row_covered = np.empty(size, np.bool_)
        self.col_covered = np.empty(size, np.bool_)
        self.path = np.empty((2 * size + 1, 2), np.int64)


def munkres(cost: np.ndarray) -> np.ndarray:
    """Column assigned to each row of cost (R, C) at minimum total cost; -1 where a row gets no column.

    Same assignment as `munkres.Munkres().compute(cost)` (the reference's solver), also among ties.
    """
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {cost.shape}")
    n_rows, n_cols = cost.shape
    col_of_row = np.full(n_rows, -1, np.int64)
    if n_rows == 0 or n_cols == 0:
        return col_of_row
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost must be finite")
    ws = MunkresWorkspace(max(n_rows, n_cols))
    munkres_into(cost, ws.work, ws.star_in_row, ws.star_in_col, ws.prime_in_row, ws.row_covered,
                 ws.col_covered, ws.path, col_of_row)
    return col_of_row
