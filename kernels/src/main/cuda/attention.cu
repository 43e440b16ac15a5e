// Multi-head attention with a key mask, flash style: one warp per (batch, head, query row), keys
// streamed once with an online softmax, so no Lq x Lk score matrix exists. Each lane holds
// head_dim / 32 elements of q and of the output (head dims 40, 64, 80, 160 and 512 all fit).
// Masked keys get the additive bias (1 - m) * -10000 that diffusers uses, so an all-masked row
// gives the same near-uniform weights as PyTorch.
#include "common.cuh"

#define RLS_MAX_PER_LANE 16  // head dims up to 512

// q [B, Lq, C], k/v [B, Lk, C], mask [B, Lk] or null; out [B, Lq, C]; C = heads * d
extern "C" __global__ void attention_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                         const float* __restrict__ mask, float* __restrict__ out,
                                         int B, int Lq, int Lk, int heads, int d, float scale) {
    long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    int C = heads * d;
    if (warp >= (long long)B * heads * Lq) return;
    int i = (int)(warp % Lq), h = (int)((warp / Lq) % heads), b = (int)(warp / ((long long)Lq * heads));
    const float* qr = q + ((long long)b * Lq + i) * C + h * d;
    float qv[RLS_MAX_PER_LANE], acc[RLS_MAX_PER_LANE];
#pragma unroll
    for (int t = 0; t < RLS_MAX_PER_LANE; t++) {
        int dd = t * 32 + lane;
        qv[t] = dd < d ? qr[dd] : 0.f;
        acc[t] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int j = 0; j < Lk; j++) {
        const float* kr = k + ((long long)b * Lk + j) * C + h * d;
        float s = 0.f;
#pragma unroll
        for (int t = 0; t < RLS_MAX_PER_LANE; t++) {
            int dd = t * 32 + lane;
            if (dd < d) s = fmaf(qv[t], kr[dd], s);
        }
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        s *= scale;
        if (mask) s += (1.f - mask[(long long)b * Lk + j]) * -10000.f;
        float mNew = fmaxf(m, s), corr = expf(m - mNew), p = expf(s - mNew);
        l = l * corr + p;
        const float* vr = v + ((long long)b * Lk + j) * C + h * d;
#pragma unroll
        for (int t = 0; t < RLS_MAX_PER_LANE; t++) {
            int dd = t * 32 + lane;
            if (dd < d) acc[t] = fmaf(p, vr[dd], acc[t] * corr);
        }
        m = mNew;
    }
    float* orow = out + ((long long)b * Lq + i) * C + h * d;
    float inv = 1.f / l;
#pragma unroll
    for (int t = 0; t < RLS_MAX_PER_LANE; t++) {
        int dd = t * 32 + lane;
        if (dd < d) orow[dd] = acc[t] * inv;
    }
}
