// Elementwise and layout kernels. extern "C" keeps the names stable for cuModuleGetFunction.
#include "common.cuh"

// y[i] = a[i] + b[i]
extern "C" __global__ void add_f32(const float* __restrict__ a, const float* __restrict__ b,
                                   float* __restrict__ y, long long n) {
    RLS_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

// y[i] = alpha a[i] + beta b[i]
extern "C" __global__ void axpby_f32(float alpha, const float* __restrict__ a, float beta, const float* __restrict__ b,
                                     float* __restrict__ y, long long n) {
    RLS_GRID_STRIDE(i, n) y[i] = alpha * a[i] + beta * b[i];
}

// y[i] = f(x[i]); op 0 SiLU, 1 GELU (erf), 2 QuickGELU, 3 scale by arg
extern "C" __global__ void map_f32(const float* __restrict__ x, float* __restrict__ y, long long n, int op, float arg) {
    RLS_GRID_STRIDE(i, n) {
        float v = x[i];
        y[i] = op == 0 ? rls_silu(v) : op == 1 ? rls_gelu(v) : op == 2 ? rls_quick_gelu(v) : v * arg;
    }
}

// x [rows, 2h] -> y [rows, h]: y = x[:, :h] * gelu(x[:, h:])
extern "C" __global__ void geglu_f32(const float* __restrict__ x, float* __restrict__ y, long long rows, int h) {
    RLS_GRID_STRIDE(i, rows * h) {
        long long r = i / h;
        int c = (int)(i % h);
        y[i] = x[r * 2 * h + c] * rls_gelu(x[r * 2 * h + h + c]);
    }
}

// x [n, pixels, c] + v [n, c] broadcast over pixels
extern "C" __global__ void add_per_sample_f32(const float* __restrict__ x, const float* __restrict__ v, float* __restrict__ y,
                                              long long pixels, int c, long long total) {
    RLS_GRID_STRIDE(i, total) y[i] = x[i] + v[(i / ((long long)c * pixels)) * c + i % c];
}

// dst[r * dstStride + dstOff + j] = src[r * srcStride + srcOff + j] for r < rows, j < count
// (channel concat / slice, concat along dim 1 and batch).
extern "C" __global__ void copy_rows_f32(const float* __restrict__ src, long long srcStride, long long srcOff,
                                         float* __restrict__ dst, long long dstStride, long long dstOff,
                                         long long rows, long long count) {
    RLS_GRID_STRIDE(i, rows * count) {
        long long r = i / count, j = i % count;
        dst[r * dstStride + dstOff + j] = src[r * srcStride + srcOff + j];
    }
}
