/*
 * The CPU GEMM on Intel AMX (TDPBF16PS: 16 x 16 fp32 tiles += 16 x 32 bf16 times 32 x 16 bf16), at fp32
 * accuracy: every fp32 a splits exactly into three bf16 parts, a = a1 + a2 + a3 (each the truncated top
 * 16 bits of what is left), and B into one part (bf16 weights), two (fp16: b1 + b2, exact) or three
 * (fp32). C accumulates the products a_i b_j with i + j <= 4: 3, 5 or 6 bf16 products per fp32 one, the
 * dropped ones below 2^-21 of |a b| (truncated parts). Each product of two bf16 values is exact in fp32 and each tile step
 * adds it to C in fp32, so the error is that of an fp32 GEMM (a different order of additions than the
 * AVX-512 kernels, so not their bits). A row's result depends only on that row of A, B and the K slices
 * (fixed by K), never on the other rows of the call: batch invariant, as the other kernels.
 * Compiled for AMX by the target pragma below into the same library as the AVX2 and AVX-512 kernels;
 * NativeGemm calls it only where the CPU has amx_tile + amx_bf16 and the kernel granted the tile state.
 *
 * Layouts (16-bit values):
 *  - split A: row tile t (16 rows), chunk ch (32 of K), part p (0..2) at ((t * chunks + ch) * 3 + p) * 512, as
 *    [16 rows][32 k]; rows past the real ones and k past K are zero.
 *  - packed B slice of one panel (32 columns): chunk ch, part p, half h (columns 16 h ..) at
 *    ((ch * parts + p) * 2 + h) * 512, as AMX wants B: [16 pairs of k][16 columns][2].
 */
#pragma GCC target("avx512f,avx512bw,f16c,amx-tile,amx-bf16")
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define TILE 512 /* 16-bit values in one 1 KiB tile */

/* Asks the kernel for the AMX tile state (once per process): 0 when granted. */
int refldmseg_amx_enable(void) {
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1;
}

static inline __m512i top_half(__m512 x) {
    return _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int) 0xFFFF0000));
}

/* The low 16 bits of each lane's 32 (bf16 bits after a shift right by 16) as 16 shorts. */
static inline __m256i to_bf16(__m512i top) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(top, 16));
}

/*
 * rows rows of A (fp32, row r at a[aOff + r lda], k values) split into three bf16 parts at dst + dOff in
 * the split-A layout: ceil(rows / 16) row tiles of ceil(k / 32) chunks, zero past rows and k.
 */
void refldmseg_amx_split_a(const float *a, long aOff, long lda, int rows, int k, unsigned short *dst, long dOff) {
    int chunks = (k + 31) / 32, padded = (rows + 15) / 16 * 16;
    a += aOff;
    dst += dOff;
    for (int r = 0; r < padded; r++) {
        unsigned short *d = dst + (long) (r / 16) * chunks * 3 * TILE + (r % 16) * 32;
        const float *row = a + (long) r * lda;
        for (int ch = 0; ch < chunks; ch++, d += 3 * TILE) {
            for (int h = 0; h < 2; h++) {
                int k0 = ch * 32 + h * 16, n = k - k0 < 0 ? 0 : k - k0 > 16 ? 16 : k - k0;
                __mmask16 m = r < rows ? (__mmask16) ((1u << n) - 1) : 0;
                __m512 x = _mm512_maskz_loadu_ps(m, row + k0);
                __m512i t1 = top_half(x);
                __m512 rest = _mm512_sub_ps(x, _mm512_castsi512_ps(t1)); /* exact: x and its top half share the exponent */
                __m512i t2 = top_half(rest);
                __m512 t3 = _mm512_sub_ps(rest, _mm512_castsi512_ps(t2)); /* at most 8 significant bits: a bf16 */
                _mm256_storeu_si256((__m256i *) (d + h * 16), to_bf16(t1));
                _mm256_storeu_si256((__m256i *) (d + TILE + h * 16), to_bf16(t2));
                _mm256_storeu_si256((__m256i *) (d + 2 * TILE + h * 16), to_bf16(_mm512_castps_si512(t3)));
            }
        }
    }
}

/* 16 values of B as fp32: kind 0 fp16 bits, 1 bf16 bits, 2 fp32 (a constant after inlining). */
static inline __attribute__((always_inline)) __m512 load_b(const unsigned short *h, const float *f, long at, const int kind) {
    if (kind == 2) return _mm512_loadu_ps(f + at);
    __m256i v = _mm256_loadu_si256((const __m256i *) (h + at));
    return kind == 1 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)) : _mm512_cvtph_ps(v);
}

/*
 * One chunk (32 k, `valid` of them real) of one panel: rows of 32 values at src (16-bit h or fp32 f, kind as
 * load_b) into `parts` (1..3, a constant after inlining) parts of two AMX B tiles each at d.
 */
static inline __attribute__((always_inline)) void pack_chunk(const unsigned short *h, const float *f, long at, int valid,
                                                             unsigned short *d, const int kind, const int parts) {
    for (int i = 0; i < 16; i++) {
        long row = at + 64L * i;
        for (int half = 0; half < 2; half++) {
            __m512 even = 2 * i < valid ? load_b(h, f, row + 16 * half, kind) : _mm512_setzero_ps();
            __m512 odd = 2 * i + 1 < valid ? load_b(h, f, row + 32 + 16 * half, kind) : _mm512_setzero_ps();
            for (int p = 0; p < parts; p++) {
                /* part p of each value: its top half; what is left goes on to the next part (the last keeps all of it) */
                __m512i e = p + 1 < parts ? top_half(even) : _mm512_castps_si512(even);
                __m512i o = p + 1 < parts ? top_half(odd) : _mm512_castps_si512(odd);
                _mm512_storeu_si512(d + (p * 2 + half) * TILE + i * 32, _mm512_or_si512(_mm512_srli_epi32(e, 16), top_half(_mm512_castsi512_ps(o))));
                if (p + 1 < parts) {
                    even = _mm512_sub_ps(even, _mm512_castsi512_ps(e));
                    odd = _mm512_sub_ps(odd, _mm512_castsi512_ps(o));
                }
            }
        }
    }
}

/* One panel's K slice of kc values (row kk at src[at + 32 kk]) in AMX's B layout at dst, k past kc zero. */
static inline __attribute__((always_inline)) void pack_panel(const unsigned short *h, const float *f, long at, int kc,
                                                             unsigned short *dst, const int kind, const int parts) {
    for (int ch = 0; ch < (kc + 31) / 32; ch++) pack_chunk(h, f, at + 32L * 32 * ch, kc - 32 * ch, dst + (long) ch * parts * 2 * TILE, kind, parts);
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* C tiles 0..3 (row tile r, column half h at 2 r + h), A tiles 4, 5 (row tiles), B tiles 6, 7 (halves). */
#define LOAD_A(part) do { _tile_loadd(4, a0 + (part) * TILE, 64); if (tiles == 2) _tile_loadd(5, a1 + (part) * TILE, 64); } while (0)
#define LOAD_B(part) do { _tile_loadd(6, b + (part) * 2 * TILE, 64); _tile_loadd(7, b + (part) * 2 * TILE + TILE, 64); } while (0)
#define PRODUCT() do { _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); \
        if (tiles == 2) { _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7); } } while (0)

/*
 * One block of `tiles` (1 or 2, a constant after inlining) row tiles x one panel, C (16 tiles rows x 32)
 * at c with row stride ldc floats, += A's chunks from a0 / a1 times the panel's nc chunks at bq. The order
 * of the products reuses the loaded tiles: a1b1, a1b2, a2b2, a2b1, a3b1 (fp16); a1b1, a1b3, a1b2, a2b2, a2b1,
 * a3b1 (fp32); a1b1, a2b1, a3b1 (bf16).
 */
static inline __attribute__((always_inline)) void block(const unsigned short *a0, const unsigned short *a1, long aChunk,
                                                        const unsigned short *bq, int nc, int parts, float *c, long ldc,
                                                        const int tiles) {
    long stride = ldc * 4;
    _tile_loadd(0, c, stride);
    _tile_loadd(1, c + 16, stride);
    if (tiles == 2) {
        _tile_loadd(2, c + 16 * ldc, stride);
        _tile_loadd(3, c + 16 * ldc + 16, stride);
    }
    for (int ch = 0; ch < nc; ch++, a0 += aChunk, a1 += aChunk) {
        const unsigned short *b = bq + (long) ch * parts * 2 * TILE;
        LOAD_A(0);
        LOAD_B(0);
        PRODUCT();
        if (parts == 1) {
            LOAD_A(1);
            PRODUCT();
        } else {
            if (parts == 3) {
                LOAD_B(2);
                PRODUCT();
            }
            LOAD_B(1);
            PRODUCT();
            LOAD_A(1);
            PRODUCT();
            LOAD_B(0);
            PRODUCT();
        }
        LOAD_A(2);
        PRODUCT();
    }
    _tile_stored(0, c, stride);
    _tile_stored(1, c + 16, stride);
    if (tiles == 2) {
        _tile_stored(2, c + 16 * ldc, stride);
        _tile_stored(3, c + 16 * ldc + 16, stride);
    }
}

/* C's starting values for rows x cols of a block at dst (row stride ld): the residual (laid out as C, at res) plus the bias, or the bias, or zero. */
static void start_values(float *dst, long ld, const float *res, long resLd, const float *bias, int rows, int cols) {
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16) ((1u << cols) - 1);
    __mmask16 m1 = cols <= 16 ? 0 : cols >= 32 ? 0xFFFF : (__mmask16) ((1u << (cols - 16)) - 1);
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        __m512 x0 = b0, x1 = b1;
        if (res) {
            x0 = _mm512_maskz_loadu_ps(m0, res + r * resLd);
            x1 = _mm512_maskz_loadu_ps(m1, res + r * resLd + 16);
            if (bias) {
                x0 = _mm512_add_ps(x0, b0);
                x1 = _mm512_add_ps(x1, b1);
            }
        }
        _mm512_mask_storeu_ps(dst + r * ld, m0, x0);
        _mm512_mask_storeu_ps(dst + r * ld + 16, m1, x1);
    }
}

/*
 * C rows [0, rows) x panels [0, panels) (the last one lastCols 1..32 columns wide), C's row r, panel q at
 * c[cOff + r ldc + 32 q], += (or, with start, = residual (null: none; laid out as C) + bias (null: none, at
 * bias[biasOff + 32 q]) +) A times B over one K slice of kc values: A's chunks [ch0, ch0 + ceil(kc / 32)) of its
 * split rows from ap + apOff (row tile 0 = row 0; chunks per row tile); B's panel q, element (kk, j) at
 * bOff + q bStride + 32 kk + j of the 16-bit h (fp16, or bf16 where bf16) or, with h null, of the fp32 f. Each
 * panel's slice is packed into AMX's B layout at `packed` (ceil(kc / 32) x parts x 1024 values; parts 1 for bf16,
 * 2 for fp16, 3 for fp32) just before its blocks run, so it stays in L2 while they read it. Blocks of 32 rows; a
 * ragged block (rows or columns) runs on a scratch tile.
 */
void refldmseg_amx_gemm(const unsigned short *ap, long apOff, int rows, int chunks, int ch0,
                        const unsigned short *h, const float *f, long bOff, long bStride, int bf16, int kc, int panels, int lastCols,
                        float *c, const float *res, long cOff, long ldc, int start, const float *bias, long biasOff,
                        unsigned short *packed) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
    float scratch[32 * 32] __attribute__((aligned(64)));
    int nc = (kc + 31) / 32, parts = f ? 3 : bf16 ? 1 : 2;
    long tileChunks = (long) chunks * 3 * TILE, aChunk = 3 * TILE;
    ap += apOff + (long) ch0 * 3 * TILE;
    c += cOff;
    if (res) res += cOff;
    for (int q = 0; q < panels; q++) {
        long from = bOff + (long) q * bStride;
        if (f) pack_panel(h, f, from, kc, packed, 2, 3);
        else if (bf16) pack_panel(h, f, from, kc, packed, 1, 1);
        else pack_panel(h, f, from, kc, packed, 0, 2);
        const float *bq_bias = bias ? bias + biasOff + 32L * q : NULL;
        int cols = q + 1 < panels ? 32 : lastCols;
        for (int r0 = 0; r0 < rows; r0 += 32) {
            int blockRows = rows - r0 < 32 ? rows - r0 : 32, tiles = blockRows > 16 ? 2 : 1;
            const unsigned short *a0 = ap + (long) (r0 / 16) * tileChunks, *a1 = a0 + tileChunks;
            float *cb = c + (long) r0 * ldc + 32L * q;
            const float *rb = res ? res + (long) r0 * ldc + 32L * q : NULL;
            if (blockRows == tiles * 16 && cols == 32) {
                if (start) start_values(cb, ldc, rb, ldc, bq_bias, blockRows, 32);
                if (tiles == 2) block(a0, a1, aChunk, packed, nc, parts, cb, ldc, 2);
                else block(a0, a1, aChunk, packed, nc, parts, cb, ldc, 1);
                continue;
            }
            memset(scratch, 0, sizeof scratch);
            if (start) start_values(scratch, 32, rb, ldc, bq_bias, blockRows, cols);
            else for (int r = 0; r < blockRows; r++) memcpy(scratch + 32 * r, cb + r * ldc, sizeof(float) * cols);
            if (tiles == 2) block(a0, a1, aChunk, packed, nc, parts, scratch, 32, 2);
            else block(a0, a1, aChunk, packed, nc, parts, scratch, 32, 1);
            for (int r = 0; r < blockRows; r++) memcpy(cb + r * ldc, scratch + 32 * r, sizeof(float) * cols);
        }
    }
    _tile_release();
}
