// Shared helpers for the fp32 kernels. Tensors are compact channels-last (NHWC / [rows, C]).
#pragma once

#define RLS_GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
__device__ __forceinline__ double rls_block_sum(double v) {
    __shared__ double partial[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) total += partial[w];
    return total;
}

__device__ __forceinline__ float rls_silu(float x) { return x / (1.f + expf(-x)); }
__device__ __forceinline__ float rls_gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float rls_quick_gelu(float x) { return x / (1.f + expf(-1.702f * x)); }
