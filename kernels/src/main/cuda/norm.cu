// GroupNorm (+ SiLU), LayerNorm and row softmax: one block per group / row, statistics in double
// like the CPU backend, two passes over the data (mean, then squared deviations).
#include "common.cuh"

// x [n, pixels, c]; one block per (sample, group); y = (x - mean) rstd gamma + beta, then SiLU if silu
extern "C" __global__ void group_norm_f32(const float* __restrict__ x, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, float* __restrict__ y,
                                          int pixels, int c, int groups, float eps, int silu) {
    int b = blockIdx.x / groups, g = blockIdx.x % groups, cpg = c / groups;
    long long count = (long long)pixels * cpg;
    const float* xb = x + (long long)b * pixels * c + g * cpg;
    float* yb = y + (long long)b * pixels * c + g * cpg;
    double s = 0;
    for (long long i = threadIdx.x; i < count; i += blockDim.x) s += xb[(i / cpg) * c + i % cpg];
    double mean = rls_block_sum(s) / count;
    double q = 0;
    for (long long i = threadIdx.x; i < count; i += blockDim.x) {
        double d = xb[(i / cpg) * c + i % cpg] - mean;
        q += d * d;
    }
    double rstd = 1.0 / sqrt(rls_block_sum(q) / count + eps);
    for (long long i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * cpg + (int)(i % cpg);
        float scale = (float)(rstd * gamma[ch]), shift = (float)(beta[ch] - mean * rstd * gamma[ch]);
        long long at = (i / cpg) * c + i % cpg;
        float v = xb[at] * scale + shift;
        yb[at] = silu ? rls_silu(v) : v;
    }
}

// x [rows, c]; one block per row
extern "C" __global__ void layer_norm_f32(const float* __restrict__ x, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, float* __restrict__ y, int c, float eps) {
    const float* xr = x + (long long)blockIdx.x * c;
    float* yr = y + (long long)blockIdx.x * c;
    double s = 0;
    for (int i = threadIdx.x; i < c; i += blockDim.x) s += xr[i];
    double mean = rls_block_sum(s) / c;
    double q = 0;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        double d = xr[i] - mean;
        q += d * d;
    }
    double rstd = 1.0 / sqrt(rls_block_sum(q) / c + eps);
    for (int i = threadIdx.x; i < c; i += blockDim.x) yr[i] = (float)((xr[i] - mean) * rstd * gamma[i] + beta[i]);
}

// softmax over the last dimension, max-subtracted; one block per row
extern "C" __global__ void softmax_rows_f32(const float* __restrict__ x, float* __restrict__ y, int c) {
    __shared__ float red[32];
    const float* xr = x + (long long)blockIdx.x * c;
    float* yr = y + (long long)blockIdx.x * c;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < c; i += blockDim.x) m = fmaxf(m, xr[i]);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, red[w]);
    double s = 0;
    for (int i = threadIdx.x; i < c; i += blockDim.x) s += expf(xr[i] - m);
    float inv = (float)(1.0 / rls_block_sum(s));
    for (int i = threadIdx.x; i < c; i += blockDim.x) yr[i] = expf(xr[i] - m) * inv;
}
