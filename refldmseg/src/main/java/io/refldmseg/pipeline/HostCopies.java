package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Layouts;
import io.refldmseg.engine.Tensor;

/** Host copies of pipeline tensors in the fixtures' NCHW layout, for listeners; and the request-scoped backend memory. */
final class HostCopies {
    private HostCopies() {
    }

    /** A channels-last tensor [N, H, W, C] as an NCHW HostTensor. */
    static HostTensor nchw(Backend be, Tensor t) {
        return HostTensor.f32(Layouts.nhwcToNchw(be.toHost(t), t.dim(0), t.dim(1), t.dim(2), t.dim(3)), t.dim(0), t.dim(3), t.dim(1), t.dim(2));
    }

    /** Per-step host latents ({@code rows} batch rows each, NHWC like {@code nhwc}) stacked as [steps, rows, C, H, W]. */
    static HostTensor stack(float[][] steps, int[] nhwc, int rows) {
        int h = nhwc[1], w = nhwc[2], c = nhwc[3], per = h * w * c * rows;
        float[] out = new float[steps.length * per];
        for (int i = 0; i < steps.length; i++)
            System.arraycopy(Layouts.nhwcToNchw(steps[i], rows, h, w, c), 0, out, i * per, per);
        return HostTensor.f32(out, steps.length, rows, c, h, w);
    }

    /** A host NHWC latent of {@code rows} batch rows shaped like {@code nhwc} (one row) as an NCHW HostTensor. */
    static HostTensor latentNchw(float[] hwc, int[] nhwc, int rows) {
        int h = nhwc[1], w = nhwc[2], c = nhwc[3];
        return HostTensor.f32(Layouts.nhwcToNchw(hwc, rows, h, w, c), rows, c, h, w);
    }

    /** Runs {@code body} and then frees the backend memory it made (results are host data by then). */
    static <T> T scoped(Backend be, java.util.function.Supplier<T> body) {
        try (Backend.Scope ignored = be.scope()) {
            return body.get();
        }
    }
}
