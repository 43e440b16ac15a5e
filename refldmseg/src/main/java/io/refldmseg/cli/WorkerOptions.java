package io.refldmseg.cli;

import picocli.CommandLine.Option;

/** How many engines serve one command's queue: shared by serve, batch and evaluate. */
final class WorkerOptions {
    @Option(names = "--workers", defaultValue = "1", paramLabel = "N", description = "engines, each loading the models and taking requests"
            + " on its own share of --threads (default: ${DEFAULT-VALUE}; memory grows with each; the README's serving section says when it pays)")
    int workers;
}
