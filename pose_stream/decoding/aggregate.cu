// Multi-resolution heatmap aggregation, NMS + top-k candidates and refine peaks on the GPU.
//
// Host side: aggregate_cuda.py (launch order, buffers, shapes). The arithmetic is the NumPy reference's
// (aggregate_ref.py), operation for operation: every float operation is an explicit round-to-nearest
// intrinsic (__fmaf_rn, __fmul_rn, __fadd_rn, __fsub_rn, __fdiv_rn, __fsqrt_rn), which the compiler may
// neither contract nor reorder, so results equal the reference bit for bit. Compile without fast math
// (--ftz=false keeps subnormals as NumPy does).
//
// Self-contained (no #include) so that nvcc (pycuda) and NVRTC (CuPy) both compile it.
//
// Resize tables ("tab", n output samples) are int32 arrays packed as [i0 | i1 | bits(l0) | bits(l1)]:
// out[d] = fma(x[i0[d]], l0[d], x[i1[d]] * l1[d]), horizontal pass first, then vertical.
//
// Keys: a candidate (value v, flat index f = y * W + x) is the 64-bit key ordered(v) << 32 | (0xffffffff - f),
// so a larger key is a larger value, and among equal values the lower flat index: the reference's tie rule.
// Zero is canonical +0.0 (-0.0 would order below +0.0 although they compare equal); key 0 is below every
// real key and marks "nothing".

#define FULL_MASK 0xffffffffu
#define NMS_TILE 32            // nms_block_topk: 32 x 32 pixels per block of 32 x 32 threads
#define MAX_PAD 4              // largest NMS half-window (kernel 9)
#define REFINE_THREADS 256
#define REFINE_PIXELS 8        // pixels per thread in refine_argmax
#define REFINE_PERSONS 32      // persons per block in refine_argmax

typedef unsigned long long u64;

__device__ __forceinline__ u64 max_u64(u64 a, u64 b) { return a > b ? a : b; }
__device__ __forceinline__ u64 min_u64(u64 a, u64 b) { return a < b ? a : b; }

__device__ __forceinline__ unsigned int ordered_bits(float v) {
    unsigned int b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float from_ordered(unsigned int o) {
    return __uint_as_float((o & 0x80000000u) ? (o & 0x7fffffffu) : ~o);
}

__device__ __forceinline__ float canonical_zero(float v) { return v == 0.0f ? 0.0f : v; }

__device__ __forceinline__ u64 make_key(float v, unsigned int flat) {
    return ((u64)ordered_bits(canonical_zero(v)) << 32) | (u64)(0xffffffffu - flat);
}

__device__ __forceinline__ unsigned int key_flat(u64 key) { return 0xffffffffu - (unsigned int)(key & 0xffffffffu); }
__device__ __forceinline__ float key_value(u64 key) { return from_ordered((unsigned int)(key >> 32)); }

// One resized sample at output (y, x) of `plane` (src_w columns): horizontal pass, then vertical.
__device__ __forceinline__ float resize_at(const float* plane, int src_w, const int* rows, int n_rows,
                                           const int* cols, int n_cols, int y, int x) {
    const int r0 = rows[y], r1 = rows[n_rows + y];
    const float m0 = __int_as_float(rows[2 * n_rows + y]), m1 = __int_as_float(rows[3 * n_rows + y]);
    const int c0 = cols[x], c1 = cols[n_cols + x];
    const float l0 = __int_as_float(cols[2 * n_cols + x]), l1 = __int_as_float(cols[3 * n_cols + x]);
    const float* upper = plane + (long long)r0 * src_w;
    const float* lower = plane + (long long)r1 * src_w;
    const float u = __fmaf_rn(upper[c0], l0, __fmul_rn(upper[c1], l1));
    const float d = __fmaf_rn(lower[c0], l0, __fmul_rn(lower[c1], l1));
    return __fmaf_rn(u, m0, __fmul_rn(d, m1));
}

// hm at [x+1, x-1, y+1, y-1], indices clamped: what the quarter-pixel adjust compares.
__device__ __forceinline__ void write_neighbours(const float* map, int H, int W, int y, int x, float* out) {
    const long long row = (long long)y * W;
    out[0] = map[row + min(x + 1, W - 1)];
    out[1] = map[row + max(x - 1, 0)];
    out[2] = map[(long long)min(y + 1, H - 1) * W + x];
    out[3] = map[(long long)max(y - 1, 0) * W + x];
}

// Sorts one key per lane, descending across the warp (bitonic network).
__device__ __forceinline__ u64 warp_sort_desc(u64 v, int lane) {
    for (int size = 2; size <= 32; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            const u64 other = __shfl_xor_sync(FULL_MASK, v, stride);
            const bool keep_max = ((lane & size) == 0) == ((lane & stride) == 0);
            v = keep_max ? max_u64(v, other) : min_u64(v, other);
        }
    }
    return v;
}

// The 32 largest of two descending warp lists, descending (bitonic merge).
__device__ __forceinline__ u64 warp_merge_desc(u64 a, u64 b, int lane) {
    u64 v = max_u64(a, __shfl_sync(FULL_MASK, b, 31 - lane));
    for (int stride = 16; stride > 0; stride >>= 1) {
        const u64 other = __shfl_xor_sync(FULL_MASK, v, stride);
        v = ((lane & stride) == 0) ? max_u64(v, other) : min_u64(v, other);
    }
    return v;
}

// Merges the descending lists lists[0..32) (one per warp of a 1024-thread block) into lists[0].
// Every thread of the block must call it.
__device__ __forceinline__ void block_merge_lists(u64 (*lists)[32], int warp, int lane) {
    __syncthreads();
    for (int active = 16; active >= 1; active >>= 1) {
        if (warp < active) {
            const u64 merged = warp_merge_desc(lists[warp][lane], lists[warp + active][lane], lane);
            lists[warp][lane] = merged;  // no other warp reads lists[warp] at this level
        }
        __syncthreads();
    }
}

// One pass at half resolution for joint k = blockIdx.z: heat = (out0_up[c] + out1[c]) / 2 and, when tag_half
// is not null, tags = out0_up[K + c], with c = channel_of[k]. `mirrored`: the pass ran on the flipped input;
// column x reads column w2-1-x of the pass (flip back after upsampling, as the reference).
// Grid (ceil(w2 / blockDim.x), h2, K).
extern "C" __global__ void half_res_pass(const float* __restrict__ out0, const float* __restrict__ out1,
                                         const int* __restrict__ rows, const int* __restrict__ cols,
                                         const int* __restrict__ channel_of, float* __restrict__ heat_half,
                                         float* __restrict__ tag_half, int K, int h4, int w4, int h2, int w2,
                                         int mirrored) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y;
    const int k = blockIdx.z;
    if (x >= w2) return;
    const int c = channel_of[k];
    const int xs = mirrored ? w2 - 1 - x : x;
    const long long quarter = (long long)h4 * w4;
    const long long half = (long long)h2 * w2;
    const float up = resize_at(out0 + c * quarter, w4, rows, h2, cols, w2, y, xs);
    const float sum = __fadd_rn(up, out1[c * half + (long long)y * w2 + xs]);
    heat_half[k * half + (long long)y * w2 + x] = __fmul_rn(sum, 0.5f);
    if (tag_half) {
        tag_half[k * half + (long long)y * w2 + x] =
            resize_at(out0 + (K + c) * quarter, w4, rows, h2, cols, w2, y, xs);
    }
}

// One scale's heatmap at full-resolution (y, x) of joint k: the projected plain heatmap, or the mean of the
// projected plain and flipped ones.
__device__ __forceinline__ float projected_heat(const float* heat_plain, const float* heat_flip, const int* rows,
                                                const int* cols, int k, int h2, int w2, int H, int W, int y, int x) {
    const long long half = (long long)h2 * w2;
    const float v = resize_at(heat_plain + k * half, w2, rows, H, cols, W, y, x);
    if (!heat_flip) return v;
    return __fmul_rn(__fadd_rn(v, resize_at(heat_flip + k * half, w2, rows, H, cols, W, y, x)), 0.5f);
}

// Projects one scale's half-resolution heatmaps to the network-input size: acc = v, or acc + v when
// `accumulate`; then / divisor when divisor > 0 (the last of several scales). Grid (ceil(W / blockDim.x), H, K).
// (With a single scale nms_block_topk projects by itself.)
extern "C" __global__ void project_heat(const float* __restrict__ heat_plain, const float* __restrict__ heat_flip,
                                        const int* __restrict__ rows, const int* __restrict__ cols,
                                        float* __restrict__ acc, int K, int h2, int w2, int H, int W,
                                        int accumulate, float divisor) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y;
    const int k = blockIdx.z;
    if (x >= W) return;
    float v = projected_heat(heat_plain, heat_flip, rows, cols, k, h2, w2, H, W, y, x);
    float* a = acc + ((long long)k * H + y) * W + x;
    if (accumulate) v = __fadd_rn(*a, v);
    if (divisor > 0.0f) v = __fdiv_rn(v, divisor);
    *a = v;
}

// NMS (keep a pixel iff it equals the max of its (2 pad + 1)^2 window, pixels outside the map ignored;
// others count as 0) and the 32 best keys of each 32 x 32 tile. Block (32, 32); grid
// (ceil(W / 32), ceil(H / 32), K); block_keys (K, tiles, 32), tiles = gridDim.x * gridDim.y.
// With heat_plain null it reads the aggregated heatmaps `heat`; otherwise (a single scale) it projects the
// half-resolution heatmaps itself (recomputing the halo) and writes its tile of `heat` for refine and adjust.
extern "C" __global__ void nms_block_topk(float* __restrict__ heat, const float* __restrict__ heat_plain,
                                          const float* __restrict__ heat_flip, const int* __restrict__ rows,
                                          const int* __restrict__ cols, u64* __restrict__ block_keys,
                                          int K, int H, int W, int h2, int w2, int pad) {
    __shared__ float tile[NMS_TILE + 2 * MAX_PAD][NMS_TILE + 2 * MAX_PAD];
    __shared__ float row_max[NMS_TILE + 2 * MAX_PAD][NMS_TILE];
    __shared__ u64 lists[32][32];
    const int lane = threadIdx.x, warp = threadIdx.y, tid = warp * 32 + lane;
    const int k = blockIdx.z;
    const int x0 = blockIdx.x * NMS_TILE, y0 = blockIdx.y * NMS_TILE;
    float* map = heat + (long long)k * H * W;
    const float neg_inf = __int_as_float(0xff800000);
    const int span = NMS_TILE + 2 * pad;
    for (int i = tid; i < span * span; i += 1024) {
        const int r = i / span, c = i % span;
        const int y = y0 - pad + r, x = x0 - pad + c;
        float v = neg_inf;
        if (y >= 0 && y < H && x >= 0 && x < W) {
            if (heat_plain) {
                v = projected_heat(heat_plain, heat_flip, rows, cols, k, h2, w2, H, W, y, x);
                if (r >= pad && r < pad + NMS_TILE && c >= pad && c < pad + NMS_TILE) map[(long long)y * W + x] = v;
            } else {
                v = map[(long long)y * W + x];
            }
        }
        tile[r][c] = v;
    }
    __syncthreads();
    for (int i = tid; i < span * NMS_TILE; i += 1024) {
        const int r = i / NMS_TILE, c = i % NMS_TILE;
        float m = tile[r][c];
        for (int d = 1; d <= 2 * pad; ++d) m = fmaxf(m, tile[r][c + d]);
        row_max[r][c] = m;
    }
    __syncthreads();
    const int y = y0 + warp, x = x0 + lane;
    u64 key = 0ull;
    if (y < H && x < W) {
        const float v = tile[warp + pad][lane + pad];
        float m = row_max[warp][lane];
        for (int d = 1; d <= 2 * pad; ++d) m = fmaxf(m, row_max[warp + d][lane]);
        key = make_key(v == m ? v : 0.0f, (unsigned int)(y * W + x));
    }
    lists[warp][lane] = warp_sort_desc(key, lane);
    block_merge_lists(lists, warp, lane);
    if (warp == 0) {
        const int tiles = gridDim.x * gridDim.y;
        const int t = blockIdx.y * gridDim.x + blockIdx.x;
        block_keys[((long long)k * tiles + t) * 32 + lane] = lists[0][lane];
    }
}

// The M (<= 32) best keys of joint k = blockIdx.x over all tiles, and per candidate: x, y, value, the 4 adjust
// neighbours and the L tags (projected from the half-resolution tag maps of the tag scale). Block 1024.
// Outputs: out_x, out_y (K, M) int32; out_value (K, M); out_neighbours (K, M, 4); out_tags (K, M, L).
extern "C" __global__ void merge_candidates(const u64* __restrict__ block_keys, const float* __restrict__ heat,
                                            const float* __restrict__ tag_plain, const float* __restrict__ tag_flip,
                                            const int* __restrict__ rows, const int* __restrict__ cols,
                                            int* __restrict__ out_x, int* __restrict__ out_y,
                                            float* __restrict__ out_value, float* __restrict__ out_neighbours,
                                            float* __restrict__ out_tags, int K, int tiles, int M, int H, int W,
                                            int th, int tw) {
    __shared__ u64 lists[32][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int k = blockIdx.x;
    const int n = tiles * 32;
    const u64* keys = block_keys + (long long)k * n;
    u64 best = 0ull;
    for (int base = warp * 32; base < n; base += 1024) {  // the same trip count for every lane of a warp
        u64 v = keys[base + lane];
        const u64 worst = __shfl_sync(FULL_MASK, best, 31);
        if (__any_sync(FULL_MASK, v > worst)) best = warp_merge_desc(best, warp_sort_desc(v, lane), lane);
    }
    lists[warp][lane] = best;
    block_merge_lists(lists, warp, lane);
    if (warp != 0 || lane >= M) return;
    const u64 key = lists[0][lane];
    const unsigned int flat = key_flat(key);
    const int y = (int)(flat / (unsigned int)W), x = (int)(flat % (unsigned int)W);
    const int i = k * M + lane;
    out_x[i] = x;
    out_y[i] = y;
    out_value[i] = key_value(key);
    write_neighbours(heat + (long long)k * H * W, H, W, y, x, out_neighbours + 4 * i);
    const long long plane = (long long)k * th * tw;
    const int L = tag_flip ? 2 : 1;
    out_tags[L * i] = resize_at(tag_plain + plane, tw, rows, H, cols, W, y, x);
    if (tag_flip) out_tags[L * i + 1] = resize_at(tag_flip + plane, tw, rows, H, cols, W, y, x);
}

extern "C" __global__ void fill_u64(u64* __restrict__ data, u64 value, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = value;
}

// Refine, step 1: for persons p (mean tags (N, L)) and joint k = blockIdx.y, the best key of
// score = heat - rint(||tag - mean||) over the map into best[p * K + k] (atomicMax; zero it first).
// Block REFINE_THREADS; grid (ceil(H * W / (REFINE_THREADS * REFINE_PIXELS)), K, ceil(N / REFINE_PERSONS)).
extern "C" __global__ void refine_argmax(const float* __restrict__ heat, const float* __restrict__ tag_plain,
                                         const float* __restrict__ tag_flip, const int* __restrict__ rows,
                                         const int* __restrict__ cols, const float* __restrict__ mean_tags,
                                         u64* __restrict__ best, int K, int H, int W, int th, int tw, int N) {
    __shared__ float means[REFINE_PERSONS][2];
    __shared__ u64 warp_best[REFINE_PERSONS][REFINE_THREADS / 32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int k = blockIdx.y;
    const int first = blockIdx.z * REFINE_PERSONS;
    const int persons = min(REFINE_PERSONS, N - first);
    const int L = tag_flip ? 2 : 1;
    if (tid < persons * L) means[tid / L][tid % L] = mean_tags[(first + tid / L) * L + tid % L];

    const long long hw = (long long)H * W;
    const float* map = heat + k * hw;
    const float* plain = tag_plain + (long long)k * th * tw;
    const float* flipped = tag_flip ? tag_flip + (long long)k * th * tw : plain;
    float hm[REFINE_PIXELS], t0[REFINE_PIXELS], t1[REFINE_PIXELS];
    unsigned int flat[REFINE_PIXELS];
    const long long base = (long long)blockIdx.x * REFINE_THREADS * REFINE_PIXELS + tid;
#pragma unroll
    for (int i = 0; i < REFINE_PIXELS; ++i) {
        const long long p = base + (long long)i * REFINE_THREADS;
        flat[i] = (unsigned int)p;
        hm[i] = 0.0f;
        t0[i] = t1[i] = 0.0f;
        if (p < hw) {
            const int y = (int)(p / W), x = (int)(p % W);
            hm[i] = map[p];
            t0[i] = resize_at(plain, tw, rows, H, cols, W, y, x);
            t1[i] = resize_at(flipped, tw, rows, H, cols, W, y, x);
        }
    }
    __syncthreads();
    for (int q = 0; q < persons; ++q) {
        const float m0 = means[q][0], m1 = means[q][L - 1];
        u64 b = 0ull;
#pragma unroll
        for (int i = 0; i < REFINE_PIXELS; ++i) {
            if (base + (long long)i * REFINE_THREADS < hw) {
                const float d0 = __fsub_rn(t0[i], m0);
                float squared = __fmul_rn(d0, d0);
                if (L == 2) {
                    const float d1 = __fsub_rn(t1[i], m1);
                    squared = __fadd_rn(squared, __fmul_rn(d1, d1));
                }
                const float score = __fsub_rn(hm[i], rintf(__fsqrt_rn(squared)));
                b = max_u64(b, make_key(score, flat[i]));
            }
        }
        for (int offset = 16; offset > 0; offset >>= 1) b = max_u64(b, __shfl_xor_sync(FULL_MASK, b, offset));
        if (lane == 0) warp_best[q][warp] = b;
    }
    __syncthreads();
    if (tid < persons) {
        u64 r = 0ull;
        for (int w = 0; w < REFINE_THREADS / 32; ++w) r = max_u64(r, warp_best[tid][w]);
        atomicMax(best + (long long)(first + tid) * K + k, r);
    }
}

// Refine, step 2: per (person, joint) the peak's x, y, heat value and adjust neighbours. Grid ceil(N*K / block).
extern "C" __global__ void refine_finish(const u64* __restrict__ best, const float* __restrict__ heat,
                                         int* __restrict__ out_x, int* __restrict__ out_y,
                                         float* __restrict__ out_value, float* __restrict__ out_neighbours,
                                         int K, int H, int W, int N) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * K) return;
    const int k = i % K;
    const unsigned int flat = key_flat(best[i]);
    const int y = (int)(flat / (unsigned int)W), x = (int)(flat % (unsigned int)W);
    const float* map = heat + (long long)k * H * W;
    out_x[i] = x;
    out_y[i] = y;
    out_value[i] = map[flat];
    write_neighbours(map, H, W, y, x, out_neighbours + 4 * i);
}
