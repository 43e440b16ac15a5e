package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.Tensor;
import io.refldmseg.model.AlphaClipVisionTower;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Instruction extraction: each support image and its mask through the Alpha-CLIP tower (mask as
 * the alpha channel), class tokens dropped, shots concatenated; the key mask (the support mask
 * nearest-resized to the token grid) and the soft key mask (its area fraction per token); and the
 * "no instruction" tokens classifier-free guidance uses.
 */
final class Prompter {
    private final Backend be;
    private final AlphaClipVisionTower tower;
    private final Preprocess prep;
    private Tensor nullTokens;

    Prompter(Backend be, AlphaClipVisionTower tower, Preprocess prep) {
        this.be = be;
        this.tower = tower;
        this.prep = prep;
    }

    RefLdmSeg.Prompt prompt(List<Support> supports, int ignoreLabel, PipelineListener keep) {
        Shots shots = shots(supports, ignoreLabel);
        Tensor sx = be.concatBatch(shots.images()), alpha = be.concatBatch(shots.alphas());
        Tensor all = tower.forward(sx, alpha);
        RefLdmSeg.Prompt p = assemble(shots, all);
        if (keep != PipelineListener.NONE) {
            int k = supports.size(), grid = tower.config().gridSize(), w = tower.config().width();
            Tensor tokens = p.tokens(), keyMask = p.keyMask();
            keep.onTensor("sx224", HostCopies.nchw(be, sx));
            keep.onTensor("alpha224", HostCopies.nchw(be, alpha));
            keep.onTensor("sy16", HostTensor.u8(be.toHost(keyMask), k, 1, grid, grid));
            keep.onTensor("tokens_all", HostTensor.f32(be.toHost(all), k, all.dim(1), w));
            keep.onTensor("prompt_embeds", HostTensor.f32(be.toHost(tokens), 1, tokens.dim(1), w));
            keep.onTensor("symask", HostTensor.f32(be.toHost(keyMask), 1, keyMask.dim(1)));
            keep.onPrompt(HostTensor.f32(be.toHost(tokens), 1, tokens.dim(1), w), HostTensor.f32(be.toHost(keyMask), 1, keyMask.dim(1)));
        }
        return p;
    }

    /**
     * The prompts of several requests with one tower forward over all their support images. Every
     * op of the tower treats images independently, so prompt i is bit for bit what {@link
     * #prompt} gives request i alone.
     */
    List<RefLdmSeg.Prompt> prompts(List<List<Support>> requests, List<Integer> ignoreLabels) {
        if (requests.size() != ignoreLabels.size())
            throw new IllegalArgumentException(requests.size() + " support lists but " + ignoreLabels.size() + " ignore labels");
        if (requests.isEmpty()) return List.of();
        List<Shots> each = new ArrayList<>();
        List<Tensor> images = new ArrayList<>(), alphas = new ArrayList<>();
        for (int r = 0; r < requests.size(); r++) {
            Shots s = shots(requests.get(r), ignoreLabels.get(r));
            each.add(s);
            images.addAll(s.images());
            alphas.addAll(s.alphas());
        }
        Tensor all = tower.forward(be.concatBatch(images), be.concatBatch(alphas));
        List<RefLdmSeg.Prompt> out = new ArrayList<>();
        for (int r = 0, first = 0; r < each.size(); r++) {
            int k = each.get(r).images().size();
            out.add(assemble(each.get(r), each.size() == 1 ? all : be.sliceBatch(all, first, k)));
            first += k;
        }
        return out;
    }

    /** One request's support images and alpha channels at the tower's resolution, key masks at its grid, soft key masks. */
    private record Shots(List<Tensor> images, List<Tensor> alphas, List<Tensor> keys, float[] soft) {
    }

    private Shots shots(List<Support> supports, int ignoreLabel) {
        if (supports.isEmpty()) throw new IllegalArgumentException("at least one support image with its mask is needed");
        int k = supports.size(), res = tower.config().inputResolution(), grid = tower.config().gridSize();
        List<Tensor> images = new ArrayList<>(), alphas = new ArrayList<>(), keys = new ArrayList<>();
        float[] soft = new float[k * grid * grid];
        for (Support s : supports) {
            Preprocess.Geometry g = prep.geometry(s.image().width(), s.image().height());
            images.add(be.resizeBilinear(prep.image(s.image(), g), res, res));
            Tensor mask = prep.mask(s.mask(), g, ignoreLabel);
            float[] a = be.toHost(be.resizeNearest(mask, res, res));
            for (int i = 0; i < a.length; i++) a[i] = (a[i] - 0.5f) / 0.26f;
            alphas.add(be.tensor(a, 1, res, res, 1));
            keys.add(be.resizeNearest(mask, grid, grid));
            areaFractions(be.toHost(mask), RefLdmSeg.SIZE, grid, soft, keys.size() - 1);
        }
        return new Shots(images, alphas, keys, soft);
    }

    /** A request's prompt from its shots and its [k, 1 + L, W] rows of the tower's output. */
    private RefLdmSeg.Prompt assemble(Shots shots, Tensor towerOut) {
        int k = shots.images().size(), grid = tower.config().gridSize();
        Tensor tokens = dropClassToken(towerOut, k);
        Tensor keyMask = be.reshape(be.concatBatch(shots.keys()), 1, k * grid * grid);
        return new RefLdmSeg.Prompt(tokens, keyMask, be.tensor(shots.soft(), 1, k * grid * grid), k);
    }

    /** The mean of each of grid x grid equal patches of a size x size mask into shot {@code shot}'s tokens of {@code out}. */
    private static void areaFractions(float[] mask, int size, int grid, float[] out, int shot) {
        for (int ty = 0; ty < grid; ty++)
            for (int tx = 0; tx < grid; tx++) {
                int y0 = ty * size / grid, y1 = (ty + 1) * size / grid, x0 = tx * size / grid, x1 = (tx + 1) * size / grid;
                double sum = 0;
                for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) sum += mask[y * size + x];
                out[(shot * grid + ty) * grid + tx] = (float) (sum / ((y1 - y0) * (x1 - x0)));
            }
    }


    /** [k, 1 + L, W] tower output -> [1, k * L, W] instruction tokens, shots concatenated (on the backend). */
    private Tensor dropClassToken(Tensor all, int k) {
        int l = all.dim(1) - 1, w = all.dim(2);
        Tensor rows = be.reshape(all, k * (l + 1), w);
        List<Tensor> shots = new ArrayList<>();
        for (int s = 0; s < k; s++) shots.add(be.sliceBatch(rows, s * (l + 1) + 1, l));
        return be.reshape(k == 1 ? shots.getFirst() : be.concatBatch(shots), 1, k * l, w);
    }

    /**
     * The tokens of an all-zero image with an all-ones mask (-n's null instruction), tiled for
     * {@code shots}. Made once, outside any request: the backend's memory of that forward is
     * freed and only the tokens stay, so a request-scoped backend never frees them.
     */
    Tensor nullTokens(int shots) {
        synchronized (this) {
            if (nullTokens == null) {
                int res = tower.config().inputResolution();
                float[] alpha = new float[res * res];
                java.util.Arrays.fill(alpha, (1f - 0.5f) / 0.26f);
                float[] host = HostCopies.scoped(be, () -> be.toHost(dropClassToken(
                        tower.forward(be.tensor(new float[res * res * 3], 1, res, res, 3), be.tensor(alpha, 1, res, res, 1)), 1)));
                int grid = tower.config().gridSize();
                nullTokens = be.tensor(host, 1, grid * grid, tower.config().width());
            }
        }
        return shots == 1 ? nullTokens : be.concatDim1(Collections.nCopies(shots, nullTokens));
    }
}
