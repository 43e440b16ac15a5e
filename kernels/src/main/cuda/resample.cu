// Resampling of NHWC tensors: nearest (PyTorch legacy, also 2x upsampling) and bilinear
// (align_corners = False, no antialias), with the same float arithmetic as the CPU backend.
#include "common.cuh"

__device__ __forceinline__ int rls_nearest(int dst, int in, int out) {
    float scale = (float)in / out;
    return min((int)floorf(dst * scale), in - 1);
}

extern "C" __global__ void resize_nearest_f32(const float* __restrict__ x, float* __restrict__ y,
                                              int n, int h, int w, int c, int oh, int ow) {
    RLS_GRID_STRIDE(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long p = i / c;
        int ox = (int)(p % ow), oy = (int)((p / ow) % oh), b = (int)(p / ((long long)ow * oh));
        y[i] = x[(((long long)b * h + rls_nearest(oy, h, oh)) * w + rls_nearest(ox, w, ow)) * c + ch];
    }
}

extern "C" __global__ void resize_bilinear_f32(const float* __restrict__ x, float* __restrict__ y,
                                               int n, int h, int w, int c, int oh, int ow) {
    float sh = (float)h / oh, sw = (float)w / ow;
    RLS_GRID_STRIDE(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long p = i / c;
        int ox = (int)(p % ow), oy = (int)((p / ow) % oh), b = (int)(p / ((long long)ow * oh));
        float fy = fmaxf(0.f, (oy + 0.5f) * sh - 0.5f), fx = fmaxf(0.f, (ox + 0.5f) * sw - 0.5f);
        int y0 = (int)fy, y1 = min(y0 + 1, h - 1), x0 = (int)fx, x1 = min(x0 + 1, w - 1);
        float ly = fy - y0, lx = fx - x0;
        const float* base = x + (long long)b * h * w * c + ch;
        float v00 = base[((long long)y0 * w + x0) * c], v01 = base[((long long)y0 * w + x1) * c];
        float v10 = base[((long long)y1 * w + x0) * c], v11 = base[((long long)y1 * w + x1) * c];
        y[i] = (1 - ly) * ((1 - lx) * v00 + lx * v01) + ly * ((1 - lx) * v10 + lx * v11);
    }
}
