/*
 * The CPU GEMM's 6 x 16 micro-kernel for AVX2 + FMA, called from io.refldmseg.engine.cpu.NativeGemm
 * through a critical FFM downcall on the JVM's own arrays (no copies). It computes exactly what the
 * Vector API kernel (Gemm.kernel6) computes: per C element, acc = b * a + acc, one fused multiply-add
 * per k in increasing k, starting from C (accumulate), or residual + bias, or the bias (or zero), so the two paths give
 * bit-identical results and the CPU kernels stay batch invariant. Ragged rows and columns are
 * handled here too (no zero-padded copies of A). Built with -mavx2 -mfma -mprfchw (no -march): any
 * AVX2 + FMA x86-64 runs it (PREFETCHW is a no-op where the CPU lacks it).
 */
#include <immintrin.h>
#include <stddef.h>

/*
 * One tile of C, `rows` (1..6, a constant after inlining) x 16, over a K slice of kc: A rows at a,
 * a + lda, ...; B as [kc][16]; the accumulators start from C (acc), or from the residual tile (laid
 * out as C's) plus the bias, or from the bias (or zero). Rows past `rows` are neither read nor written.
 */
static inline __attribute__((always_inline)) void tile(const float *a, long lda, const float *b, float *c, long ldc,
                                                       int kc, int acc, const float *res, const float *bias, const int rows) {
    /* C's rows are needed only after the k loop: ask for them now so a miss overlaps the loop. */
    for (int r = 0; r < rows; r++) {
        _m_prefetchw(c + r * ldc);
        _m_prefetchw(c + r * ldc + 15);
    }
    __m256 acc0[6], acc1[6];
    const float *ar[6];
    for (int r = 0; r < rows; r++) {
        ar[r] = a + r * lda;
        if (acc) {
            acc0[r] = _mm256_loadu_ps(c + r * ldc);
            acc1[r] = _mm256_loadu_ps(c + r * ldc + 8);
        } else if (res) {
            acc0[r] = _mm256_loadu_ps(res + r * ldc);
            acc1[r] = _mm256_loadu_ps(res + r * ldc + 8);
            if (bias) {
                acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(bias));
                acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(bias + 8));
            }
        } else {
            acc0[r] = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
            acc1[r] = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
        }
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b + 16 * k), b1 = _mm256_loadu_ps(b + 16 * k + 8);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ar[r] + k);
            acc0[r] = _mm256_fmadd_ps(b0, x, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(b1, x, acc1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(c + r * ldc, acc0[r]);
        _mm256_storeu_ps(c + r * ldc + 8, acc1[r]);
    }
}

/* A tile of `rows` (1..6, any) x 16 with the row count as a constant. */
static void tile_any(const float *a, long lda, const float *b, float *c, long ldc, int kc, int acc, const float *res, const float *bias,
                     int rows) {
    switch (rows) {
        case 1: tile(a, lda, b, c, ldc, kc, acc, res, bias, 1); break;
        case 2: tile(a, lda, b, c, ldc, kc, acc, res, bias, 2); break;
        case 3: tile(a, lda, b, c, ldc, kc, acc, res, bias, 3); break;
        case 4: tile(a, lda, b, c, ldc, kc, acc, res, bias, 4); break;
        case 5: tile(a, lda, b, c, ldc, kc, acc, res, bias, 5); break;
        default: tile(a, lda, b, c, ldc, kc, acc, res, bias, 6); break;
    }
}

/*
 * C rows [0, rows) x panels [0, panels) of C = or += A B^T (+ bias), panel by panel so each B
 * micro-panel stays in L1 while every row group passes over it (the order Gemm.block uses); the
 * last panel has `lastCols` (1..16) columns of C. Offsets are in floats. Row r of A starts at
 * a[aOff + r lda]; panel p's K slice at b[bOff + p bStride] as [kc][16] (zero past the real
 * columns); C's row r, panel p at c[cOff + r ldc + 16 p]; the residual (may be NULL, read only when
 * not accumulating: then C = residual + A B^T (+ bias)) laid out as C, at residual[cOff + r ldc +
 * 16 p]; the bias (may be NULL, read only when not accumulating) at bias[biasOff + 16 p], 16 values
 * per panel.
 */
void refldmseg_avx2_block(const float *a, long aOff, long lda, int rows,
                          const float *b, long bOff, long bStride, int panels, int lastCols,
                          float *c, const float *residual, long cOff, long ldc, int kc, int accumulate,
                          const float *bias, long biasOff) {
    a += aOff;
    b += bOff;
    c += cOff;
    if (residual) residual += cOff;
    int full = rows / 6, tail = rows % 6;
    for (int p = 0; p < panels; p++) {
        const float *bp = b + p * bStride, *bb = bias ? bias + biasOff + 16 * p : NULL;
        if (p < panels - 1 || lastCols == 16) {
            const float *rp = residual ? residual + 16 * p : NULL;
            for (int g = 0; g < full; g++)
                tile(a + 6 * g * lda, lda, bp, c + 6 * g * ldc + 16 * p, ldc, kc, accumulate, rp ? rp + 6 * g * ldc : NULL, bb, 6);
            if (tail) tile_any(a + 6 * full * lda, lda, bp, c + 6 * full * ldc + 16 * p, ldc, kc, accumulate, rp ? rp + 6 * full * ldc : NULL, bb, tail);
        } else { /* ragged columns: each group into a 6 x 16 scratch tile, then its lastCols columns to C */
            float scratch[6 * 16] = {0};
            for (int g = 0; g * 6 < rows; g++) {
                int n = rows - 6 * g < 6 ? rows - 6 * g : 6;
                float *cg = c + 6 * g * ldc + 16 * p;
                const float *from = accumulate ? cg : residual ? residual + 6 * g * ldc + 16 * p : NULL;
                if (from)
                    for (int r = 0; r < n; r++)
                        for (int j = 0; j < lastCols; j++) scratch[16 * r + j] = from[r * ldc + j];
                tile_any(a + 6 * g * lda, lda, bp, scratch, 16, kc, accumulate, from && !accumulate ? scratch : NULL, bb, n);
                for (int r = 0; r < n; r++)
                    for (int j = 0; j < lastCols; j++) cg[r * ldc + j] = scratch[16 * r + j];
            }
        }
    }
}
