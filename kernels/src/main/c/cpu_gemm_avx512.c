/*
 * The CPU GEMM's AVX-512 micro-kernels (12 x 32 of C from packed A panels or from A rows in place),
 * called from io.refldmseg.engine.cpu.NativeGemm through a critical FFM downcall on the JVM's own
 * arrays. They compute exactly what the Vector API kernels (Gemm.kernel12, Gemm.kernel6 with 512-bit
 * vectors) compute: per C element, acc = b * a + acc, one fused multiply-add per k in increasing k,
 * starting from C (accumulate), or residual + bias, or the bias (or zero), so both paths give bit-identical results and
 * the CPU kernels stay batch invariant. Ragged rows are handled by the row count, ragged columns by
 * masked loads and stores of C. Compiled for AVX-512F (and F16C, for fp16 weights) by the target pragma below, into the same
 * library as the AVX2 kernel; NativeGemm calls it only where the CPU has avx512f and the JVM uses
 * 512-bit vectors.
 */
#pragma GCC target("avx512f,fma,prfchw,f16c")
#include <immintrin.h>
#include <stddef.h>
#include "cpu_widen.h"

/* How far ahead (floats of B) the first row group of a block asks for B: the group that streams it from memory. */
#define B_PREFETCH 512

/* Columns of C a masked store touches: lastCols (1..32) as two 16-lane masks. */
static inline __mmask16 low_mask(int cols) { return cols >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << cols) - 1); }
static inline __mmask16 high_mask(int cols) { return cols <= 16 ? (__mmask16) 0 : cols >= 32 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (cols - 16)) - 1); }

/*
 * The start of a tile of `rows` rows (a constant after inlining): C's rows asked for now (needed only
 * after the k loop, so a miss overlaps it), the accumulators from C (masked), or from the residual
 * tile (laid out as C's, masked) plus the bias, or from the bias (or zero).
 */
static inline __attribute__((always_inline)) void start_tile(__m512 *acc0, __m512 *acc1, float *c, long ldc, int acc,
                                                             const float *res, const float *bias, __mmask16 m0, __mmask16 m1,
                                                             const int rows) {
    for (int r = 0; r < rows; r++) {
        _m_prefetchw(c + r * ldc);
        _m_prefetchw(c + r * ldc + 31);
    }
    for (int r = 0; r < rows; r++) {
        if (acc) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
        } else if (res) {
            acc0[r] = _mm512_maskz_loadu_ps(m0, res + r * ldc);
            acc1[r] = _mm512_maskz_loadu_ps(m1, res + r * ldc + 16);
            if (bias) {
                acc0[r] = _mm512_add_ps(acc0[r], _mm512_loadu_ps(bias));
                acc1[r] = _mm512_add_ps(acc1[r], _mm512_loadu_ps(bias + 16));
            }
        } else {
            acc0[r] = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
            acc1[r] = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
        }
    }
}

/* The accumulators of `rows` rows to C, only the columns in the masks. */
static inline __attribute__((always_inline)) void store_tile(const __m512 *acc0, const __m512 *acc1, float *c, long ldc,
                                                             __mmask16 m0, __mmask16 m1, const int rows) {
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

/*
 * `rows` (1..12, a constant after inlining) x 32 of C over a K slice of kc: A as a packed panel
 * [kc][12] (element (r, k) at ap[12 k + r]), B as [kc][32]; only `rows` rows of C are read or
 * written, and of those only the columns in the masks m0 / m1.
 */
static inline __attribute__((always_inline)) void tile12(const float *ap, const float *b, float *c, long ldc, int kc, int acc,
                                                         const float *res, const float *bias, __mmask16 m0, __mmask16 m1, const int rows) {
    __m512 acc0[12], acc1[12];
    start_tile(acc0, acc1, c, ldc, acc, res, bias, m0, m1, rows);
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + 32 * k), b1 = _mm512_loadu_ps(b + 32 * k + 16);
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(ap[12 * k + r]);
            acc0[r] = _mm512_fmadd_ps(b0, x, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(b1, x, acc1[r]);
        }
    }
    store_tile(acc0, acc1, c, ldc, m0, m1, rows);
}

/* The same for `rows` (1..12) rows of A read in place, row r at a + r lda, one pointer per row (for short groups: 12 spill). */
static inline __attribute__((always_inline)) void tile_rows(const float *a, long lda, const float *b, float *c, long ldc, int kc, int acc,
                                                        const float *res, const float *bias, __mmask16 m0, __mmask16 m1, const int rows) {
    __m512 acc0[12], acc1[12];
    const float *ar[12];
    start_tile(acc0, acc1, c, ldc, acc, res, bias, m0, m1, rows);
    for (int r = 0; r < rows; r++) ar[r] = a + r * lda;
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + 32 * k), b1 = _mm512_loadu_ps(b + 32 * k + 16);
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(ar[r][k]);
            acc0[r] = _mm512_fmadd_ps(b0, x, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(b1, x, acc1[r]);
        }
    }
    store_tile(acc0, acc1, c, ldc, m0, m1, rows);
}

static void tile12_any(const float *ap, const float *b, float *c, long ldc, int kc, int acc, const float *res, const float *bias,
                       __mmask16 m0, __mmask16 m1, int rows) {
    switch (rows) {
        case 1: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 1); break;
        case 2: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 2); break;
        case 3: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 3); break;
        case 4: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 4); break;
        case 5: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 5); break;
        case 6: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 6); break;
        case 7: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 7); break;
        case 8: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 8); break;
        case 9: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 9); break;
        case 10: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 10); break;
        case 11: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 11); break;
        default: tile12(ap, b, c, ldc, kc, acc, res, bias, m0, m1, 12); break;
    }
}

static void tile_rows_any(const float *a, long lda, const float *b, float *c, long ldc, int kc, int acc, const float *res, const float *bias,
                          __mmask16 m0, __mmask16 m1, int rows) {
    switch (rows) {
        case 1: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 1); break;
        case 2: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 2); break;
        case 3: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 3); break;
        case 4: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 4); break;
        case 5: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 5); break;
        case 6: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 6); break;
        case 7: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 7); break;
        case 8: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 8); break;
        case 9: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 9); break;
        case 10: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 10); break;
        default: tile_rows(a, lda, b, c, ldc, kc, acc, res, bias, m0, m1, 11); break;
    }
}

/* 16 values of 16-bit B (fp16, or bf16: the top half of an fp32) as fp32; both are exact. */
static inline __m512 widen16(const unsigned short *h, const int bf16) {
    __m256i v = _mm256_loadu_si256((const __m256i *) h);
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)) : _mm512_cvtph_ps(v);
}

static inline __attribute__((always_inline)) void widen_slices(const unsigned short *h, long hStride, float *dst, long dstStride,
                                                               long len, int count, const int bf16) {
    for (int s = 0; s < count; s++, h += hStride, dst += dstStride) {
        long i = 0;
        for (; i + 32 <= len; i += 32) {
            widen_prefetch(h, hStride, i, len, s, count);
            _mm512_storeu_ps(dst + i, widen16(h + i, bf16));
            _mm512_storeu_ps(dst + i + 16, widen16(h + i + 16, bf16));
        }
        widen_tail(h, dst, i, len, bf16);
    }
}

/*
 * count slices of len 16-bit values, slice s at h[hOff + s hStride], widened to fp32 at dst[dOff +
 * s dStride] (offsets in elements): fp16 bits, or bf16 bits where bf16 is nonzero. Exact, so it
 * gives the bits Java's Float.float16ToFloat / (bits << 16) give.
 */
void refldmseg_avx512_widen(const unsigned short *h, long hOff, long hStride, float *dst, long dOff, long dStride,
                            long len, int count, int bf16) {
    if (bf16) widen_slices(h + hOff, hStride, dst + dOff, dStride, len, count, 1);
    else widen_slices(h + hOff, hStride, dst + dOff, dStride, len, count, 0);
}

/* How B reaches a 12-row tile read in place (a constant after inlining). */
enum b_source {
    B_HOT = 0,      /* fp32, in cache already */
    B_STREAM = 1,   /* fp32 from memory: asked for B_PREFETCH floats ahead */
    B_FP16 = 2,     /* 16-bit from memory (h), widened as the tile reads it and stored to b for the row groups after it */
    B_BF16 = 3
};

/*
 * 12 x 32 of C with A's 12 rows read in place: four base pointers (rows 0, 3, 6, 9) with lda as
 * the index register, so every row's broadcast is one addressing mode and nothing spills. `src`
 * says where B comes from: with B_FP16 / B_BF16 the tile widens h [kc][32] as it goes and writes
 * it to b, so the conversion and the stream from memory overlap the FMAs instead of costing a pass.
 */
static inline __attribute__((always_inline)) void tile12_in_place(const float *a, long lda, float *b, const unsigned short *h,
                                                                  float *c, long ldc, int kc, int acc, const float *res, const float *bias,
                                                                  __mmask16 m0, __mmask16 m1, const enum b_source src) {
    __m512 acc0[12], acc1[12];
    start_tile(acc0, acc1, c, ldc, acc, res, bias, m0, m1, 12);
    const float *p0 = a, *p3 = a + 3 * lda, *p6 = a + 6 * lda, *p9 = a + 9 * lda;
    float *pb = b;
    const unsigned short *ph = h;
#define REFLDMSEG_ROW(r, p, o) { __m512 x = _mm512_set1_ps(p[(o) * lda]); acc0[r] = _mm512_fmadd_ps(b0, x, acc0[r]); acc1[r] = _mm512_fmadd_ps(b1, x, acc1[r]); }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++, pb += 32, ph += 32, p0++, p3++, p6++, p9++) {
        __m512 b0, b1;
        if (src == B_FP16 || src == B_BF16) {
            _mm_prefetch((const char *) (ph + WIDEN_PREFETCH), _MM_HINT_T0);
            b0 = widen16(ph, src == B_BF16);
            b1 = widen16(ph + 16, src == B_BF16);
            _mm512_storeu_ps(pb, b0);
            _mm512_storeu_ps(pb + 16, b1);
        } else {
            b0 = _mm512_loadu_ps(pb);
            b1 = _mm512_loadu_ps(pb + 16);
        }
        if (src == B_STREAM) {
            _mm_prefetch((const char *) (pb + B_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *) (pb + B_PREFETCH + 16), _MM_HINT_T0);
        }
        REFLDMSEG_ROW(0, p0, 0) REFLDMSEG_ROW(1, p0, 1) REFLDMSEG_ROW(2, p0, 2)
        REFLDMSEG_ROW(3, p3, 0) REFLDMSEG_ROW(4, p3, 1) REFLDMSEG_ROW(5, p3, 2)
        REFLDMSEG_ROW(6, p6, 0) REFLDMSEG_ROW(7, p6, 1) REFLDMSEG_ROW(8, p6, 2)
        REFLDMSEG_ROW(9, p9, 0) REFLDMSEG_ROW(10, p9, 1) REFLDMSEG_ROW(11, p9, 2)
    }
#undef REFLDMSEG_ROW
    store_tile(acc0, acc1, c, ldc, m0, m1, 12);
}

/* One panel's K slice (kc x 32) of 16-bit B widened into fp32 b, before a tile that cannot widen as it goes. */
static void widen_panel(const unsigned short *h, float *b, int kc, int bf16) {
    refldmseg_avx512_widen(h, 0, 0, b, 0, 0, 32L * kc, 1, bf16);
}

/*
 * C rows [0, rows12 + rows6) x panels [0, panels) of C = or += A B^T (+ bias). The first rows12
 * rows come from 12-row packed panels, group g at ap[apOff + g apStride] (the last may be partly
 * filled: its rows past rows12 are not computed), or, where ap is NULL, are read in place, row r at
 * a[aOff + r lda]; the next rows6 (0..6) rows are read in place, row rows12 + r at a[aOff +
 * (rows12 + r) lda]. Each row group passes over every panel before the next group starts, so its A
 * (12 x kc) stays in L1 while the run's B panels stream from L2 (the first group, which brings them
 * from memory, prefetches them B_PREFETCH floats ahead). Panel p's K slice at b[bOff + p
 * bStride] as [kc][32] (zero past the real columns), or, where h is not NULL, as 16-bit values
 * (fp16, or bf16 where bf16 is nonzero) at h[hOff + p hStride]: then the first row group widens
 * each panel into b as it multiplies it and the later groups read b. The last panel has lastCols
 * (1..32) columns of C. C's row r, panel p at c[cOff + r ldc + 32 p]; the residual (may be NULL,
 * read only when not accumulating: then C = residual + A B^T (+ bias)) laid out as C, at
 * residual[cOff + r ldc + 32 p]; the bias (may be NULL, read only when not accumulating) at
 * bias[biasOff + 32 p], 32 values per panel. Offsets are in elements.
 */
void refldmseg_avx512_block(const float *ap, long apOff, long apStride, int rows12,
                            const float *a, long aOff, long lda, int rows6,
                            float *b, long bOff, long bStride, const unsigned short *h, long hOff, long hStride, int bf16,
                            int panels, int lastCols, float *c, const float *residual, long cOff, long ldc, int kc, int accumulate,
                            const float *bias, long biasOff) {
    if (ap) ap += apOff;
    if (a) a += aOff;
    b += bOff;
    if (h) h += hOff;
    c += cOff;
    if (residual) residual += cOff;
    int full = rows12 / 12, partial = rows12 % 12;
    for (int g = 0; g <= full; g++) {
        int rows = g < full ? 12 : partial;
        if (rows == 0) break;
        for (int p = 0; p < panels; p++) {
            float *bp = b + p * bStride;
            const float *bb = bias ? bias + biasOff + 32 * p : NULL;
            const unsigned short *hp = h && g == 0 ? h + p * hStride : NULL;
            int cols = p < panels - 1 ? 32 : lastCols;
            __mmask16 m0 = low_mask(cols), m1 = high_mask(cols);
            float *cg = c + 32 * p + 12 * g * ldc;
            const float *rg = residual ? residual + 32 * p + 12 * g * ldc : NULL;
            if (g == 0 && p + 1 < panels) { /* the start of the next panel, which the in-tile prefetch does not reach */
                if (hp) for (int o = 0; o < WIDEN_PREFETCH; o += 32) _mm_prefetch((const char *) (hp + hStride + o), _MM_HINT_T1);
                else for (int o = 0; o < B_PREFETCH; o += 16) _mm_prefetch((const char *) (bp + bStride + o), _MM_HINT_T1);
            }
            if (hp && !ap && rows == 12) {
                if (bf16) tile12_in_place(a, lda, bp, hp, cg, ldc, kc, accumulate, rg, bb, m0, m1, B_BF16);
                else tile12_in_place(a, lda, bp, hp, cg, ldc, kc, accumulate, rg, bb, m0, m1, B_FP16);
                continue;
            }
            if (hp) widen_panel(hp, bp, kc, bf16);
            if (ap && rows == 12) tile12(ap + g * apStride, bp, cg, ldc, kc, accumulate, rg, bb, m0, m1, 12);
            else if (ap) tile12_any(ap + g * apStride, bp, cg, ldc, kc, accumulate, rg, bb, m0, m1, rows);
            else if (rows == 12 && g == 0) tile12_in_place(a, lda, bp, NULL, cg, ldc, kc, accumulate, rg, bb, m0, m1, B_STREAM);
            else if (rows == 12) tile12_in_place(a + 12 * g * lda, lda, bp, NULL, cg, ldc, kc, accumulate, rg, bb, m0, m1, B_HOT);
            else tile_rows_any(a + 12 * g * lda, lda, bp, cg, ldc, kc, accumulate, rg, bb, m0, m1, rows);
        }
    }
    if (rows6)
        for (int p = 0; p < panels; p++) {
            const float *bb = bias ? bias + biasOff + 32 * p : NULL;
            int cols = p < panels - 1 ? 32 : lastCols;
            if (h && rows12 == 0) widen_panel(h + p * hStride, b + p * bStride, kc, bf16); /* the first group is this one */
            tile_rows_any(a + rows12 * lda, lda, b + p * bStride, c + 32 * p + rows12 * ldc, ldc, kc, accumulate,
                          residual ? residual + 32 * p + rows12 * ldc : NULL, bb, low_mask(cols), high_mask(cols), rows6);
        }
}
