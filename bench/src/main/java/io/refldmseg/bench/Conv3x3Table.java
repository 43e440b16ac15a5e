package io.refldmseg.bench;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.ConvWeights;
import io.refldmseg.engine.Padding;
import io.refldmseg.engine.Tensor;
import io.refldmseg.engine.cpu.CpuBackend;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The 3x3 stride-1 convolutions of the UNet and the VAE, one shape at a time through the public
 * backend (so the path the engine picks for that shape is the one timed), fp16-exact weights as
 * the checkpoints have them: min and median of {@code runs} calls after at least three warm-up
 * calls and two seconds, and GFLOP/s of the direct convolution's multiply-adds x 2. Arguments:
 * shapes as NxHxWxCINxCOUT (default: the UNet's and VAE's), optionally {@code --runs R},
 * {@code --winograd-min-pixels P} (the backend's threshold: a huge P times the direct convolution
 * at every shape) and {@code --weights-mb MB}: cycle through as many copies of each weight as fill
 * MB (one per call), so a weight comes from memory as in a forward, where each is read once,
 * instead of from a last-level cache that holds it (some servers' L3 holds hundreds of MB).
 */
public final class Conv3x3Table {
    private static final String[] DEFAULT_SHAPES = {
            "1x64x64x320x320", "3x64x64x320x320", "1x64x64x640x320", "1x32x32x640x640", "3x32x32x640x640",
            "1x32x32x1920x640", "1x32x32x1280x1280", "1x16x16x1280x1280", "3x16x16x1280x1280", "3x16x16x2560x1280",
            "1x8x8x1280x1280", "3x8x8x2560x1280", "1x128x128x512x512", "1x256x256x256x256", "1x512x512x128x128"};

    public static void main(String[] args) {
        int runs = 10, winogradMinPixels = CpuBackend.DEFAULT_WINOGRAD_MIN_PIXELS;
        long weightsBytes = 0;
        List<String> shapes = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--runs")) runs = Integer.parseInt(args[++i]);
            else if (args[i].equals("--winograd-min-pixels")) winogradMinPixels = Integer.parseInt(args[++i]);
            else if (args[i].equals("--weights-mb")) weightsBytes = Long.parseLong(args[++i]) << 20;
            else shapes.add(args[i]);
        }
        if (shapes.isEmpty()) shapes = List.of(DEFAULT_SHAPES);
        Backend be = new CpuBackend(CpuBackend.cores(), winogradMinPixels);
        System.out.printf("engine %s, Winograd from %d pixels, %s%n%-20s %9s %9s %9s%n", be.name(), winogradMinPixels,
                weightsBytes == 0 ? "one weight per shape" : "weights cycled through " + (weightsBytes >> 20) + " MB",
                "conv NxHxWxCINxCOUT", "min ms", "median ms", "GF/s");
        for (String shape : shapes) {
            int[] s = Arrays.stream(shape.split("x")).mapToInt(Integer::parseInt).toArray();
            if (s.length != 5) throw new IllegalArgumentException("shape " + shape + ": expected NxHxWxCINxCOUT");
            int n = s[0], h = s[1], w = s[2], cin = s[3], cout = s[4];
            Random r = new Random(shape.hashCode());
            float[] values = fp16Exact(r, cout * cin * 9), bias = fp16Exact(r, cout);
            int copies = (int) Math.max(1, Math.min(1000, weightsBytes / (2L * values.length))); // fp16-exact weights pack as 2 bytes a value
            ConvWeights[] weights = new ConvWeights[copies];
            for (int c = 0; c < copies; c++) weights[c] = be.convWeights(values, cout, cin, 3, 3, bias); // each packs its own copy
            Tensor x = be.tensor(fp16Exact(r, n * h * w * cin), n, h, w, cin);
            double[] ms = new double[runs];
            int[] call = {0};
            WarmUp.run(() -> convOnce(be, x, weights[call[0]++ % copies]), 3, Duration.ofSeconds(2)); // the first shape's first calls run in C1
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                convOnce(be, x, weights[call[0]++ % copies]);
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            double gflop = 2.0 * n * h * w * cin * cout * 9 / 1e9;
            System.out.printf("%-20s %9.2f %9.2f %9.1f%n", shape, ms[0], ms[runs / 2], gflop / (ms[0] / 1e3));
        }
    }

    private static void convOnce(Backend be, Tensor x, ConvWeights weights) {
        try (Backend.Scope ignored = be.scope()) {
            be.conv2d(x, weights, 1, Padding.same(1));
        }
    }

    private static float[] fp16Exact(Random r, int count) {
        float[] a = new float[count];
        for (int i = 0; i < count; i++) a[i] = Float.float16ToFloat(Float.floatToFloat16((float) r.nextGaussian() * 0.05f));
        return a;
    }
}
