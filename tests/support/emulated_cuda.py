"""A stand-in for aggregate_cuda's drivers that runs its host code without a GPU (see EmulatedDriver)."""
from __future__ import annotations

import numpy as np

from pose_stream.decoding.aggregate_ref import adjust_neighbours, fma32, refine_peaks, suppress_non_maxima
from pose_stream.decoding.types import AggregatedMaps


class EmulatedDriver:
    """Runs aggregate_cuda's host code without a GPU: device memory is host memory behind fake addresses, and
    each kernel is emulated with the reference's arithmetic. Arguments are bound to the parameter names parsed
    from aggregate.cu and type-checked, so the host side's argument lists, pointer offsets, table packing and
    launch grids are checked against the kernel signatures. (The kernels' own code runs in the gpu tests.)"""

    BASE = 1 << 40  # allocation n at BASE + n << 32, as in tests/engine/fake_pycuda.py

    def __init__(self, source: str) -> None:
        import re

        self.signatures = {}
        for name, params in re.findall(r'extern "C" __global__ void (\w+)\((.*?)\)\s*\{', source, re.S):
            names = []
            for param in params.split(","):
                words = param.replace("__restrict__", "").replace("const", "").split()
                kind = "ptr" if "*" in param else {"int": "i32", "float": "f32", "u64": "u64"}[words[0]]
                names.append((words[-1].lstrip("*"), kind))
            self.signatures[name] = names
        self.memory = {}
        self.next = self.BASE

    def alloc(self, nbytes):
        ptr = self.next
        self.memory[ptr] = np.zeros(max(nbytes, 1), np.uint8)
        self.next += 1 << 32
        return ptr

    def free(self, ptr):
        del self.memory[ptr]

    def view(self, ptr, dtype, count):
        base = (ptr - self.BASE) // (1 << 32) * (1 << 32) + self.BASE
        offset = ptr - base
        buffer = self.memory[base]
        assert offset + count * np.dtype(dtype).itemsize <= buffer.size, "out of bounds"
        return buffer[offset:offset + count * np.dtype(dtype).itemsize].view(dtype)

    def pinned(self, nbytes):
        return np.zeros(max(nbytes, 1), np.uint8)

    def free_pinned(self, array):
        pass

    def to_device(self, ptr, host, stream):
        self.view(ptr, np.uint8, host.nbytes)[:] = host.view(np.uint8).ravel()

    def to_host(self, host, ptr, stream):
        host.view(np.uint8).ravel()[:] = self.view(ptr, np.uint8, host.nbytes)

    def synchronize(self, stream):
        pass

    def close(self):
        pass

    def launch(self, name, grid, block, args, stream):
        params = self.signatures[name]
        assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters"
        expected = {"ptr": np.uint64, "i32": np.int32, "f32": np.float32, "u64": np.uint64}
        for (param, kind), arg in zip(params, args):
            assert type(arg) is expected[kind], f"{name}({param}): {type(arg).__name__} for {kind}"
        getattr(self, "_" + name)(grid, block, **{p: a.item() for (p, _), a in zip(params, args)})

    # ---------------------------------------------------------------------------------- emulations

    def _table(self, ptr, n):
        table = self.view(ptr, np.int32, 4 * n)
        return table[:n], table[n:2 * n], table[2 * n:3 * n].view(np.float32), table[3 * n:].view(np.float32)

    def _resize(self, plane, rows, n_rows, cols, n_cols):
        r0, r1, m0, m1 = self._table(rows, n_rows)
        c0, c1, l0, l1 = self._table(cols, n_cols)
        across = fma32(plane[:, c0], l0, plane[:, c1] * l1)
        return fma32(across[r0], m0[:, None], across[r1] * m1[:, None])

    @staticmethod
    def _keys(values, flat):
        bits = (values + np.float32(0)).view(np.uint32)  # canonical +0.0
        ordered = np.where(bits & 0x80000000, ~bits, bits | 0x80000000).astype(np.uint64)
        return (ordered << np.uint64(32)) | (np.uint64(0xFFFFFFFF) - flat.astype(np.uint64))

    @staticmethod
    def _decode(keys):
        flat = (np.uint64(0xFFFFFFFF) - (keys & np.uint64(0xFFFFFFFF))).astype(np.int64)
        ordered = (keys >> np.uint64(32)).astype(np.uint32)
        bits = np.where(ordered & 0x80000000, ordered & 0x7FFFFFFF, ~ordered).astype(np.uint32)
        return flat, bits.view(np.float32)

    def _half_res_pass(self, grid, block, out0, out1, rows, cols, channel_of, heat_half, tag_half, K, h4, w4,
                       h2, w2, mirrored):
        assert grid[0] * block[0] >= w2 and grid[1] == h2 and grid[2] == K
        o0 = self.view(out0, np.float32, 2 * K * h4 * w4).reshape(2 * K, h4, w4)
        o1 = self.view(out1, np.float32, K * h2 * w2).reshape(K, h2, w2)
        channels = self.view(channel_of, np.int32, K)
        xs = np.arange(w2)[::-1] if mirrored else np.arange(w2)
        heat = self.view(heat_half, np.float32, K * h2 * w2).reshape(K, h2, w2)
        for k, c in enumerate(channels):
            up = self._resize(o0[c], rows, h2, cols, w2)
            heat[k] = (up[:, xs] + o1[c][:, xs]) * np.float32(0.5)
            if tag_half:
                tags = self.view(tag_half, np.float32, K * h2 * w2).reshape(K, h2, w2)
                tags[k] = self._resize(o0[K + c], rows, h2, cols, w2)[:, xs]

    def _project_heat(self, grid, block, heat_plain, heat_flip, rows, cols, acc, K, h2, w2, H, W, accumulate,
                      divisor):
        assert grid[0] * block[0] >= W and grid[1] == H and grid[2] == K
        total = self.view(acc, np.float32, K * H * W).reshape(K, H, W)
        for k in range(K):
            v = self._resize(self.view(heat_plain, np.float32, K * h2 * w2).reshape(K, h2, w2)[k], rows, H, cols, W)
            if heat_flip:
                flip = self.view(heat_flip, np.float32, K * h2 * w2).reshape(K, h2, w2)[k]
                v = (v + self._resize(flip, rows, H, cols, W)) * np.float32(0.5)
            if accumulate:
                v = total[k] + v
            if divisor > 0:
                v = v / np.float32(divisor)
            total[k] = v

    def _nms_block_topk(self, grid, block, heat, heat_plain, heat_flip, rows, cols, block_keys, K, H, W, h2, w2,
                        pad):
        assert grid[0] * 32 >= W and grid[1] * 32 >= H and grid[2] == K and tuple(block[:2]) == (32, 32)
        if heat_plain:  # a single scale, projected here
            self._project_heat(((W + 127) // 128, H, K), (128,), heat_plain, heat_flip, rows, cols, heat, K, h2, w2,
                               H, W, 0, 0.0)
        kept = suppress_non_maxima(self.view(heat, np.float32, K * H * W).reshape(K, H, W), 2 * pad + 1)
        tiles = grid[0] * grid[1]
        out = self.view(block_keys, np.uint64, K * tiles * 32).reshape(K, tiles, 32)
        flat = np.arange(H * W).reshape(H, W)
        for k in range(K):
            keys = self._keys(kept[k], flat)
            for ty in range(grid[1]):
                for tx in range(grid[0]):
                    tile = np.zeros(32 * 32, np.uint64)
                    part = keys[ty * 32:ty * 32 + 32, tx * 32:tx * 32 + 32].ravel()
                    tile[:part.size] = part
                    out[k, ty * grid[0] + tx] = np.sort(tile)[::-1][:32]

    def _merge_candidates(self, grid, block, block_keys, heat, tag_plain, tag_flip, rows, cols, out_x, out_y,
                          out_value, out_neighbours, out_tags, K, tiles, M, H, W, th, tw):
        assert grid[0] == K and block[0] == 1024
        keys = self.view(block_keys, np.uint64, K * tiles * 32).reshape(K, -1)
        best = np.sort(keys, axis=1)[:, ::-1][:, :M]
        flat, value = self._decode(best)
        y, x = flat // W, flat % W
        self.view(out_x, np.int32, K * M)[:] = x.ravel()
        self.view(out_y, np.int32, K * M)[:] = y.ravel()
        self.view(out_value, np.float32, K * M)[:] = value.ravel()
        maps = self.view(heat, np.float32, K * H * W).reshape(K, H, W)
        joint = np.arange(K)[:, None]
        self.view(out_neighbours, np.float32, K * M * 4)[:] = adjust_neighbours(maps, joint, y, x).ravel()
        planes = [p for p in (tag_plain, tag_flip) if p]
        tags = np.stack([self._full_tags(p, rows, cols, K, H, W, th, tw)[joint, y, x] for p in planes], -1)
        self.view(out_tags, np.float32, K * M * len(planes))[:] = tags.ravel()

    def _full_tags(self, plane, rows, cols, K, H, W, th, tw):
        maps = self.view(plane, np.float32, K * th * tw).reshape(K, th, tw)
        return np.stack([self._resize(maps[k], rows, H, cols, W) for k in range(K)])

    def _fill_u64(self, grid, block, data, value, n):
        assert grid[0] * block[0] >= n
        self.view(data, np.uint64, n)[:] = value

    def _refine_argmax(self, grid, block, heat, tag_plain, tag_flip, rows, cols, mean_tags, best, K, H, W, th, tw,
                       N):
        assert grid[0] * block[0] * 8 >= H * W and grid[1] == K and grid[2] * 32 >= N and block[0] == 256
        planes = [p for p in (tag_plain, tag_flip) if p]
        tags = np.stack([self._full_tags(p, rows, cols, K, H, W, th, tw) for p in planes], -1)
        maps = AggregatedMaps(self.view(heat, np.float32, K * H * W).reshape(K, H, W), tags)
        means = self.view(mean_tags, np.float32, N * len(planes)).reshape(N, len(planes))
        peaks = refine_peaks(maps, means)  # the reference's argmax, as the kernel's best key must decode to
        scores = np.rint(np.sqrt(((tags[None] - means[:, None, None, None]) ** 2).sum(-1)))
        out = self.view(best, np.uint64, N * K).reshape(N, K)
        for n in range(N):
            score = maps.heatmaps - scores[n]
            keys = self._keys(score, np.broadcast_to(np.arange(H * W).reshape(H, W), score.shape))
            out[n] = np.maximum(out[n], keys.reshape(K, -1).max(axis=1))
            assert (self._decode(out[n])[0] == peaks.y[n] * W + peaks.x[n]).all()

    def _refine_finish(self, grid, block, best, heat, out_x, out_y, out_value, out_neighbours, K, H, W, N):
        assert grid[0] * block[0] >= N * K
        flat, _ = self._decode(self.view(best, np.uint64, N * K).reshape(N, K))
        y, x = flat // W, flat % W
        maps = self.view(heat, np.float32, K * H * W).reshape(K, H, W)
        joint = np.arange(K)[None, :]
        self.view(out_x, np.int32, N * K)[:] = x.ravel()
        self.view(out_y, np.int32, N * K)[:] = y.ravel()
        self.view(out_value, np.float32, N * K)[:] = maps[joint, y, x].ravel()
        self.view(out_neighbours, np.float32, N * K * 4)[:] = adjust_neighbours(maps, joint, y, x).ravel()
