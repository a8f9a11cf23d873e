"""A pure-Python Munkres (Hungarian) assignment, step for step like the `munkres` package (1.x) the reference uses.

BASELINE ONLY: this is the slow, plain-Python solver of the reference test script, kept so that the
benchmark can measure the product against it. The product's solver lives with the Numba grouping.
"""
from __future__ import annotations

from collections.abc import Sequence


def munkres_assignment(cost: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Minimum-cost assignment of rows to columns of a (rows x cols) cost matrix (lists of floats).

    A rectangular matrix is padded with zeros to a square one, as munkres does; the pairs returned are
    those inside the original matrix, sorted by row.
    """
    rows = len(cost)
    cols = len(cost[0]) if rows else 0
    n = max(rows, cols)
    if n == 0:
        return []
    c = [[float(cost[i][j]) if i < rows and j < cols else 0.0 for j in range(n)] for i in range(n)]
    for row in c:  # step 1: subtract each row's minimum
        low = min(row)
        for j in range(n):
            row[j] -= low
    starred = [[False] * n for _ in range(n)]
    primed = [[False] * n for _ in range(n)]
    row_covered = [False] * n
    col_covered = [False] * n
    for i in range(n):  # step 2: star one independent zero per row and column
        for j in range(n):
            if c[i][j] == 0 and not row_covered[i] and not col_covered[j]:
                starred[i][j] = True
                row_covered[i] = col_covered[j] = True
    row_covered = [False] * n
    col_covered = [False] * n
    step = 3
    path_start = (0, 0)
    while True:
        if step == 3:  # cover the columns of starred zeros; done when all are covered
            for j in range(n):
                col_covered[j] = any(starred[i][j] for i in range(n))
            if sum(col_covered) >= n:
                break
            step = 4
        elif step == 4:  # prime uncovered zeros until one has no star in its row
            i, j = 0, 0  # each search resumes where the last one stopped, as munkres 1.x does
            while True:
                zero = _uncovered_zero(c, row_covered, col_covered, n, i, j)
                if zero is None:
                    step = 6
                    break
                i, j = zero
                primed[i][j] = True
                star_col = next((k for k in range(n) if starred[i][k]), -1)
                if star_col < 0:
                    path_start = (i, j)
                    step = 5
                    break
                j = star_col
                row_covered[i] = True
                col_covered[star_col] = False
        elif step == 5:  # flip stars along the alternating path of primes and stars
            path = [path_start]
            while True:
                star_row = next((r for r in range(n) if starred[r][path[-1][1]]), -1)
                if star_row < 0:
                    break
                path.append((star_row, path[-1][1]))
                prime_col = next(k for k in range(n) if primed[star_row][k])
                path.append((star_row, prime_col))
            for i, j in path:
                starred[i][j] = not starred[i][j]
            row_covered = [False] * n
            col_covered = [False] * n
            primed = [[False] * n for _ in range(n)]
            step = 3
        else:  # step 6: shift the smallest uncovered value to create a new zero
            low = min(c[i][j] for i in range(n) if not row_covered[i] for j in range(n) if not col_covered[j])
            for i in range(n):
                for j in range(n):
                    if row_covered[i]:
                        c[i][j] += low
                    if not col_covered[j]:
                        c[i][j] -= low
            step = 4
    return [(i, j) for i in range(rows) for j in range(cols) if starred[i][j]]


def _uncovered_zero(c: list[list[float]], row_covered: list[bool], col_covered: list[bool], n: int,
                    i0: int, j0: int) -> tuple[int, int] | None:
    """The uncovered zero munkres 1.x picks: rows and columns are scanned cyclically from (i0, j0); in the first
    row holding one, the last such zero of that cyclic column order."""
    for di in range(n):
        i = (i0 + di) % n
        if row_covered[i]:
            continue
        found = None
        for dj in range(n):
            j = (j0 + dj) % n
            if c[i][j] == 0 and not col_covered[j]:
                found = (i, j)
        if found is not None:
            return found
    return None
