package io.refldmseg.model;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;

/**
 * The shipped processor for the support key mask, with an optional recorder of the
 * probabilities it uses.
 * <ul>
 * <li>{@link Mode#HARD}: today's op, the key mask as bias (1 - m) * -10000 (the fused op when nothing records).</li>
 * <li>{@link Mode#SOFT}: bias log(max(m, 1e-4)) with m the soft key mask (the support object's
 *     area fraction on each token's patch), so partly covered tokens are partly attended.</li>
 * <li>{@link Mode#NONE}: no key mask: the ablation of the paper's masking.</li>
 * </ul>
 * Self-attention calls (no key mask) are left unbiased in every mode. With a recorder, the
 * probabilities are computed unfused ({@code attentionScores}), handed to the recorder, and the
 * output is {@code attend(p, v)}: what is recorded is exactly what is used.
 */
public final class MaskedAttention implements AttentionProcessor {
    public enum Mode {HARD, SOFT, NONE}

    /** Receives the post-softmax probabilities [B, heads, Lq, Lk] of a layer call (valid during the call only). */
    @FunctionalInterface
    public interface Recorder {
        void record(Call call, Tensor probabilities);
    }

    /** The floor of the soft mask before its log: a token with no object gets bias log(1e-4) ~ -9.2. */
    public static final float SOFT_FLOOR = 1e-4f;

    private final Mode mode;
    private final Recorder recorder;

    public MaskedAttention(Mode mode, Recorder recorder) {
        this.mode = java.util.Objects.requireNonNull(mode);
        this.recorder = recorder;
    }

    public Mode mode() {
        return mode;
    }

    @Override
    public Tensor process(Call call) {
        Backend be = call.backend();
        Tensor bias = call.keyMask() == null ? null : switch (mode) {
            case HARD -> recorder == null ? null : call.hardMaskBias();
            case SOFT -> softBias(call);
            case NONE -> null;
        };
        if (recorder == null) {
            if (mode == Mode.HARD) return call.fused();
            return be.attentionWithBias(call.q(), call.k(), call.v(), call.heads(), bias);
        }
        Tensor p = be.attentionScores(call.q(), call.k(), call.heads(), bias);
        recorder.record(call, p);
        return be.attend(p, call.v(), call.heads());
    }

    private static Tensor softBias(Call call) {
        Tensor soft = call.context().softKeyMask();
        if (soft == null || soft.dim(0) != call.keyMask().dim(0) || soft.dim(1) != call.keyMask().dim(1))
            throw new IllegalStateException(call.layer().name() + ": soft mask mode needs the soft key mask of the call ("
                    + "the pipeline provides it; a direct UNet call must pass it in its AttentionContext)");
        Backend be = call.backend();
        float[] m = be.toHost(soft), bias = new float[m.length];
        for (int i = 0; i < m.length; i++) bias[i] = (float) Math.log(Math.max(m[i], SOFT_FLOOR));
        return be.tensor(bias, soft.dim(0), 1, 1, soft.dim(1));
    }
}
