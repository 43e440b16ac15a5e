/*
 * The CPU GEMM's 6 x 16 micro-kernel for AVX2 + FMA, called from io.refldmseg.engine.cpu.NativeGemm
 * through a critical FFM downcall on the JVM's own arrays (no copies). It computes exactly what the
 * Vector API kernel (Gemm.kernel6) computes: per C element, acc = b * a + acc, one fused multiply-add
 * per k in increasing k, starting from C (accumulate), or residual + bias, or the bias (or zero), so the two paths give
 * bit-identical results and the CPU kernels stay batch invariant. Ragged rows and columns are
 * handled here too (no zero-padded copies of A). Built with -mavx2 -mfma -mf16c -mprfchw (no -march): any
 * AVX2 + FMA x86-64 runs it (they all have F16C; PREFETCHW is a no-op where the CPU lacks it).
 */
#include <immintrin.h>
#include <stddef.h>
#include "cpu_widen.h"


/* 8 values of 16-bit B (fp16, or bf16: the top half of an fp32) as fp32; both are exact. */
static inline __m256 widen8(const unsigned short *h, const int bf16) {
    __m128i v = _mm_loadu_si128((const __m128i *) h);
    return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)) : _mm256_cvtph_ps(v);
}

static inline __attribute__((always_inline)) void widen_slices(const unsigned short *h, long hStride, float *dst, long dstStride,
                                                               long len, int count, const int bf16) {
    for (int s = 0; s < count; s++, h += hStride, dst += dstStride) {
        long i = 0;
        for (; i + 32 <= len; i += 32) {
            widen_prefetch(h, hStride, i, len, s, count);
            for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(dst + i + j, widen8(h + i + j, bf16));
        }
        widen_tail(h, dst, i, len, bf16);
    }
}

/*
 * count slices of len 16-bit values, slice s at h[hOff + s hStride], widened to fp32 at dst[dOff +
 * s dStride] (offsets in elements): fp16 bits, or bf16 bits where bf16 is nonzero. Exact, so it
 * gives the bits Java's Float.float16ToFloat / (bits << 16) give. Needs F16C (every AVX2 CPU has it).
 */
void refldmseg_avx2_widen(const unsigned short *h, long hOff, long hStride, float *dst, long dOff, long dStride,
                          long len, int count, int bf16) {
    if (bf16) widen_slices(h + hOff, hStride, dst + dOff, dStride, len, count, 1);
    else widen_slices(h + hOff, hStride, dst + dOff, dStride, len, count, 0);
}

/*
 * One tile of C, `rows` (1..6, a constant after inlining) x 16, over a K slice of kc: A rows at a,
 * a + lda, ...; B as [kc][16]; the accumulators start from C (acc), or from the residual tile (laid
 * out as C's) plus the bias, or from the bias (or zero). Rows past `rows` are neither read nor written.
 * With `src` 1 (fp16) or 2 (bf16), a constant after inlining, B comes from 16-bit h [kc][16] instead,
 * widened as the tile reads it and stored to b for the row groups after it.
 */
static inline __attribute__((always_inline)) void tile_from(const float *a, long lda, float *b, const unsigned short *h, float *c, long ldc,
                                                            int kc, int acc, const float *res, const float *bias, const int rows,
                                                            const int src) {
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
        __m256 b0, b1;
        if (src) {
            _mm_prefetch((const char *) (h + 16 * k + WIDEN_PREFETCH), _MM_HINT_T0);
            b0 = widen8(h + 16 * k, src == 2);
            b1 = widen8(h + 16 * k + 8, src == 2);
            _mm256_storeu_ps(b + 16 * k, b0);
            _mm256_storeu_ps(b + 16 * k + 8, b1);
        } else {
            b0 = _mm256_loadu_ps(b + 16 * k);
            b1 = _mm256_loadu_ps(b + 16 * k + 8);
        }
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

/* The tile from fp32 B. */
static inline __attribute__((always_inline)) void tile(const float *a, long lda, const float *b, float *c, long ldc, int kc, int acc,
                                                       const float *res, const float *bias, const int rows) {
    tile_from(a, lda, (float *) b, NULL, c, ldc, kc, acc, res, bias, rows, 0); /* b is only read */
}

/* One panel's K slice (kc x 16) of 16-bit B widened into fp32 b, before a tile that does not widen as it goes. */
static void widen_panel(const unsigned short *h, float *b, int kc, int bf16) {
    refldmseg_avx2_widen(h, 0, 0, b, 0, 0, 16L * kc, 1, bf16);
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
 * last panel has `lastCols` (1..16) columns of C. Offsets are in elements. Row r of A starts at
 * a[aOff + r lda]; panel p's K slice at b[bOff + p bStride] as [kc][16] (zero past the real
 * columns), or, where h is not NULL, as 16-bit values (fp16, or bf16 where bf16 is nonzero) at
 * h[hOff + p hStride]: then the panel's first row group widens it into b as it multiplies it and
 * the later groups read b. C's row r, panel p at c[cOff + r ldc + 16 p]; the residual (may be NULL,
 * read only when not accumulating: then C = residual + A B^T (+ bias)) laid out as C, at
 * residual[cOff + r ldc + 16 p]; the bias (may be NULL, read only when not accumulating) at
 * bias[biasOff + 16 p], 16 values per panel.
 */
void refldmseg_avx2_block(const float *a, long aOff, long lda, int rows,
                          float *b, long bOff, long bStride, const unsigned short *h, long hOff, long hStride, int bf16,
                          int panels, int lastCols, float *c, const float *residual, long cOff, long ldc, int kc, int accumulate,
                          const float *bias, long biasOff) {
    a += aOff;
    b += bOff;
    if (h) h += hOff;
    c += cOff;
    if (residual) residual += cOff;
    int full = rows / 6, tail = rows % 6;
    for (int p = 0; p < panels; p++) {
        float *bp = b + p * bStride;
        const float *bb = bias ? bias + biasOff + 16 * p : NULL;
        const unsigned short *hp = h ? h + p * hStride : NULL;
        if (hp && p + 1 < panels) /* the start of the next panel, which the in-tile prefetch does not reach */
            for (int o = 0; o < WIDEN_PREFETCH; o += 32) _mm_prefetch((const char *) (hp + hStride + o), _MM_HINT_T1);
        if (p < panels - 1 || lastCols == 16) {
            const float *rp = residual ? residual + 16 * p : NULL;
            for (int g = 0; g < full; g++) {
                float *cg = c + 6 * g * ldc + 16 * p;
                const float *rg = rp ? rp + 6 * g * ldc : NULL;
                if (g == 0 && hp && bf16) tile_from(a, lda, bp, hp, cg, ldc, kc, accumulate, rg, bb, 6, 2);
                else if (g == 0 && hp) tile_from(a, lda, bp, hp, cg, ldc, kc, accumulate, rg, bb, 6, 1);
                else tile(a + 6 * g * lda, lda, bp, cg, ldc, kc, accumulate, rg, bb, 6);
            }
            if (tail) {
                if (hp && full == 0) widen_panel(hp, bp, kc, bf16);
                tile_any(a + 6 * full * lda, lda, bp, c + 6 * full * ldc + 16 * p, ldc, kc, accumulate, rp ? rp + 6 * full * ldc : NULL, bb, tail);
            }
        } else { /* ragged columns: each group into a 6 x 16 scratch tile, then its lastCols columns to C */
            if (hp) widen_panel(hp, bp, kc, bf16);
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
