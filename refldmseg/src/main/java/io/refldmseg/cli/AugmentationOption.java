package io.refldmseg.cli;

import io.refldmseg.pipeline.Augmentation;
import picocli.CommandLine.Option;

/** Test-time augmentation ({@link Augmentation}): query copies and support views, shared by segment, batch and evaluate. */
final class AugmentationOption {
    @Option(names = "--tta", defaultValue = "1", paramLabel = "N", description = "also run on turned / mirrored copies of query and supports"
            + " and average their logits: 1 (off, default), 2 (half turn), 4 (quarter turns) or 8 (and mirrored); N times the work."
            + " For targets whose orientation does not matter")
    int copies;

    @Option(names = "--support-views", defaultValue = "1", paramLabel = "N", description = "pass every support as N views of it (extra shots):"
            + " 1 (off, default), 2, 4 or 8 turned / mirrored as --tta turns, 16 or 32 also shifted by half a token cell; the query runs once,"
            + " the tower runs N times per support and the UNet attends to N times the tokens. For targets whose orientation does not matter")
    int views;

    /** The support view count, checked. */
    int checkedViews() {
        return checkedViews(views);
    }

    /** A --support-views count, checked (also for video, which takes no --tta). */
    static int checkedViews(int views) {
        if (!Augmentation.VIEW_COUNTS.contains(views)) throw new Main.UserError("--support-views must be " + Augmentation.spelled(Augmentation.VIEW_COUNTS) + ", got " + views);
        return views;
    }

    /** The copy count, checked; {@code noise}: whether --noise was given (its tensors have the query's shape only). */
    int checked(boolean noise, String... incompatible) {
        if (!Augmentation.COUNTS.contains(copies)) throw new Main.UserError("--tta must be " + Augmentation.spelled(Augmentation.COUNTS) + ", got " + copies);
        if (copies > 1 && noise) throw new Main.UserError("--tta " + copies + " cannot be combined with --noise: its tensors have the query's shape, not its turned copies'");
        if (copies > 1 && incompatible.length > 0) throw new Main.UserError("--tta " + copies + " cannot be combined with " + String.join(" or ", incompatible));
        return copies;
    }
}
