// fp32 GEMM C[M, N] (+)= A[M, K] W[N, K]^T (+ bias) in 64 x 64 tiles (16-deep K steps, 256 threads,
// 4 x 4 outputs per thread). A is read through a loader, so the same body serves linear layers
// (dense rows) and convolutions (implicit GEMM: the im2col element is computed, never stored).
// This is the exactness path; tensor-core bf16/fp16 variants come on top of it.
#include "common.cuh"

#define RLS_BM 64
#define RLS_BN 64
#define RLS_BK 16

struct DenseRows {
    const float* a;
    long long lda;
    __device__ __forceinline__ float operator()(int m, int k) const { return a[m * lda + k]; }
};

// NHWC input, K ordered (ky, kx, ci) to match the packed OHWI weight
struct Im2colRows {
    const float* x;
    int h, w, c, oh, ow, kw, stride, padTop, padLeft;
    __device__ __forceinline__ float operator()(int m, int k) const {
        int b = m / (oh * ow), r = m % (oh * ow), oy = r / ow, ox = r % ow;
        int tap = k / c, ci = k % c;
        int iy = oy * stride - padTop + tap / kw, ix = ox * stride - padLeft + tap % kw;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) return 0.f;
        return x[(((long long)b * h + iy) * w + ix) * c + ci];
    }
};

template <class Rows>
__device__ void rls_gemm_tile(Rows a, const float* __restrict__ wt, const float* __restrict__ bias, float* __restrict__ c,
                              int M, int N, int K, int accumulate) {
    __shared__ float As[RLS_BK][RLS_BM + 4];
    __shared__ float Ws[RLS_BK][RLS_BN + 4];
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int m0 = blockIdx.y * RLS_BM, n0 = blockIdx.x * RLS_BN;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += RLS_BK) {
        for (int e = tid; e < RLS_BM * RLS_BK; e += 256) {
            int r = e / RLS_BK, kk = e % RLS_BK, m = m0 + r, k = k0 + kk;
            As[kk][r] = m < M && k < K ? a(m, k) : 0.f;
            int n = n0 + r;
            Ws[kk][r] = n < N && k < K ? wt[(long long)n * K + k] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < RLS_BK; kk++) {
            float av[4], wv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) wv[j] = Ws[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], wv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty * 4 + i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int n = n0 + tx * 4 + j;
            if (n >= N) continue;
            long long at = (long long)m * N + n;
            c[at] = accumulate ? c[at] + acc[i][j] : acc[i][j] + (bias ? bias[n] : 0.f);
        }
    }
}

// grid (ceil(N / 64), ceil(M / 64)), 256 threads
extern "C" __global__ void linear_f32(const float* __restrict__ x, const float* __restrict__ wt, const float* __restrict__ bias,
                                      float* __restrict__ y, int M, int N, int K, int accumulate) {
    rls_gemm_tile(DenseRows{x, K}, wt, bias, y, M, N, K, accumulate);
}

// x NHWC [n, h, w, c], wt packed OHWI [N, kh * kw * c]; y NHWC [n, oh, ow, N]
extern "C" __global__ void conv2d_f32(const float* __restrict__ x, const float* __restrict__ wt, const float* __restrict__ bias,
                                      float* __restrict__ y, int n, int h, int w, int c, int oh, int ow, int N,
                                      int kh, int kw, int stride, int padTop, int padLeft) {
    rls_gemm_tile(Im2colRows{x, h, w, c, oh, ow, kw, stride, padTop, padLeft}, wt, bias, y, n * oh * ow, N, kh * kw * c, 0);
}
