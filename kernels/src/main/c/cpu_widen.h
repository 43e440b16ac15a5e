/*
 * The parts of widening 16-bit B (fp16, or bf16: the top half of an fp32) to fp32 that do not
 * depend on the vector width, included by the AVX2 and the AVX-512 kernels (each compiles them for
 * its own target).
 */
#ifndef REFLDMSEG_CPU_WIDEN_H
#define REFLDMSEG_CPU_WIDEN_H

/* How far ahead (16-bit values) the widening asks for its source: about one DRAM latency's worth of a core's stream. */
#define WIDEN_PREFETCH 1024

/* Asks for slice s's source WIDEN_PREFETCH values past i, or, past the slice's end, for the next slice's start. */
static inline void widen_prefetch(const unsigned short *h, long hStride, long i, long len, int s, int count) {
    long ahead = i + WIDEN_PREFETCH;
    if (ahead < len) _mm_prefetch((const char *) (h + ahead), _MM_HINT_T0);
    else if (s + 1 < count) _mm_prefetch((const char *) (h + hStride + ahead - len), _MM_HINT_T0);
}

/* Values [i, len) one at a time (exact, as the vector conversions). */
static inline void widen_tail(const unsigned short *h, float *dst, long i, long len, int bf16) {
    for (; i < len; i++) {
        if (bf16) {
            unsigned int bits = (unsigned int) h[i] << 16;
            __builtin_memcpy(dst + i, &bits, 4);
        } else {
            dst[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h[i])));
        }
    }
}

#endif
