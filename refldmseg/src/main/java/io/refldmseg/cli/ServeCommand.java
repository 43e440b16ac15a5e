package io.refldmseg.cli;

import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.Segmenter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve segmentation over HTTP: POST /v1/segment (multipart query, support, support_mask), GET /healthz, GET /metrics.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "port (default: ${DEFAULT-VALUE}; 0 picks a free one)")
    int port;

    @Option(names = "--queue", defaultValue = "64", description = "requests that may wait; more get 503 (default: ${DEFAULT-VALUE})")
    int queue;

    @Option(names = "--deadline-ms", defaultValue = "120000", description = "a request waiting and running longer fails with 503 (default: ${DEFAULT-VALUE})")
    long deadlineMs;

    @Option(names = "--max-upload-mb", defaultValue = "32", description = "largest request body; larger get 413 (default: ${DEFAULT-VALUE})")
    int maxUploadMb;

    @Option(names = "--prompt-cache-mb", defaultValue = "256", description = "budget of the support-instruction cache (default: ${DEFAULT-VALUE})")
    int promptCacheMb;

    @Option(names = "--max-batch", defaultValue = "1", description = "most requests run as one batch; 1 turns batching off (default: ${DEFAULT-VALUE};"
            + " on the CPU full-size batches are not faster yet)")
    int maxBatch;

    @Option(names = "--max-wait-ms", defaultValue = "5", description = "how long a batch waits for more requests (default: ${DEFAULT-VALUE})")
    long maxWaitMs;

    @Mixin
    WorkerOptions workers;

    @Override
    public Integer call() throws InterruptedException {
        if (port < 0 || port > 65535) throw new Main.UserError("--port must be in 0..65535, got " + port);
        if (queue < 1) throw new Main.UserError("--queue must be at least 1, got " + queue);
        if (deadlineMs < 1) throw new Main.UserError("--deadline-ms must be positive, got " + deadlineMs);
        if (maxUploadMb < 1) throw new Main.UserError("--max-upload-mb must be positive, got " + maxUploadMb);
        if (maxBatch < 1 || maxBatch > 256) throw new Main.UserError("--max-batch must be in 1..256, got " + maxBatch);
        if (maxWaitMs < 0 || maxWaitMs > 60_000) throw new Main.UserError("--max-wait-ms must be in 0..60000, got " + maxWaitMs);
        if (promptCacheMb < 0) throw new Main.UserError("--prompt-cache-mb must be >= 0, got " + promptCacheMb);
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        List<RefLdmSeg> engines = models.open(workers.workers);
        RefLdmSeg seg = engines.getFirst();
        Segmenter segmenter = new Segmenter(engines, new Segmenter.Config(queue, Duration.ofMillis(deadlineMs), (long) promptCacheMb << 20,
                maxBatch, Duration.ofMillis(maxWaitMs)));
        SegmentServer server = SegmentServer.start(segmenter, new SegmentServer.Settings(host, port, (long) maxUploadMb << 20, Duration.ofMillis(deadlineMs)));
        Progress.line("serving -" + seg.architecture().name().toLowerCase() + " on http://" + host + ":" + server.port() + "/v1/segment (Ctrl-C stops)");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close(); // finishes what is queued
            engines.forEach(RefLdmSeg::close);
            stopped.countDown();
        }));
        stopped.await();
        return 0;
    }
}
