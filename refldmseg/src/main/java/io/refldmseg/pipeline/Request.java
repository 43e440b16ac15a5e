package io.refldmseg.pipeline;

import java.util.List;

/** One segmentation request: the query, its in-context examples, and the settings. */
public record Request(RgbImage query, List<Support> supports, Options options) {
    public Request {
        supports = List.copyOf(supports);
        if (supports.isEmpty()) throw new IllegalArgumentException("at least one support image with its mask is needed");
    }

    public Request(RgbImage query, List<Support> supports) {
        this(query, supports, Options.defaults());
    }
}
