package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A request queue in front of one loaded {@link RefLdmSeg}: {@link #submit} returns at once with a
 * future; one worker thread takes requests in arrival order. Policy when the queue is full: the
 * submit is refused with {@link Overloaded} (a server answers 503). A request whose deadline passes
 * while it waits fails with a {@link TimeoutException}; a cancelled future's request is skipped if
 * it has not started (a running request finishes: the engine has no preemption). {@link #close()}
 * stops taking requests, runs everything already queued, and returns when the last one is done:
 * no accepted request is lost.
 *
 * <p>Supports identical by content (image pixels, mask labels, ignore label) reuse their encoded
 * instruction from an LRU cache with a byte budget: video and dataset annotation repeat the same
 * support thousands of times, and the tower is about a third of a -f request.
 *
 * <p>Not yet: dynamic batching (every request is its own UNet call) and engine-owned worker pools
 * (the CPU backend's workers are shared by the JVM).
 */
public final class Segmenter implements AutoCloseable {
    /**
     * @param queueCapacity     requests waiting beyond the one running
     * @param defaultDeadline   how long a request may wait and run before it fails, or null for no limit
     * @param promptCacheBytes  budget of the instruction cache (0 disables it)
     */
    public record Config(int queueCapacity, Duration defaultDeadline, long promptCacheBytes) {
        public Config {
            if (queueCapacity < 1) throw new IllegalArgumentException("queue capacity must be at least 1, got " + queueCapacity);
            if (promptCacheBytes < 0) throw new IllegalArgumentException("prompt cache budget must be >= 0, got " + promptCacheBytes);
        }

        public static Config defaults() {
            return new Config(64, null, 256L << 20);
        }
    }

    /** The queue was full when the request came. */
    public static final class Overloaded extends RejectedExecutionException {
        Overloaded(String message) {
            super(message);
        }
    }

    /** Counters for monitoring (a server exports them as metrics). */
    public record Stats(int queued, long completed, long failed, long rejected, long expired, long cancelled,
                        long promptCacheHits, long promptCacheMisses, long promptCacheBytes, long[] latencyBucketsMillis,
                        long[] latencyCounts, double latencySumSeconds) {
    }

    /** What a result came with: the result and how long it waited in the queue. */
    public record Done(Result result, long queueMillis, boolean promptCached) {
    }

    private record Job(Request request, long deadlineNanos, long submittedNanos, CompletableFuture<Done> future) {
    }

    private static final Job STOP = new Job(null, 0, 0, null);
    /** Upper bounds of the latency histogram, in ms (the last bucket is +Inf). */
    public static final long[] LATENCY_BUCKETS_MS = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

    private final RefLdmSeg seg;
    private final Config config;
    private final BlockingQueue<Job> queue;
    private final Thread worker;
    private final PromptCache cache;
    private volatile boolean closed;
    private final LongAdder completed = new LongAdder(), failed = new LongAdder(), rejected = new LongAdder(),
            expired = new LongAdder(), cancelled = new LongAdder();
    private final AtomicLong[] latency = new AtomicLong[LATENCY_BUCKETS_MS.length + 1];
    private final AtomicLong latencyMicros = new AtomicLong();

    public Segmenter(RefLdmSeg seg, Config config) {
        this.seg = seg;
        this.config = config;
        this.queue = new ArrayBlockingQueue<>(config.queueCapacity() + 1); // + room for the stop marker
        this.cache = new PromptCache(config.promptCacheBytes());
        for (int i = 0; i < latency.length; i++) latency[i] = new AtomicLong();
        this.worker = Thread.ofPlatform().name("refldmseg-segmenter").daemon(true).start(this::work);
    }

    public RefLdmSeg engine() {
        return seg;
    }

    /** Queues {@code request} with the default deadline. */
    public CompletableFuture<Done> submit(Request request) {
        return submit(request, config.defaultDeadline());
    }

    /** Queues {@code request}; it fails if not done within {@code deadline} (null: never). Throws {@link Overloaded} when the queue is full. */
    public CompletableFuture<Done> submit(Request request, Duration deadline) {
        long now = System.nanoTime();
        Job job = new Job(request, deadline == null ? Long.MAX_VALUE : now + deadline.toNanos(), now, new CompletableFuture<>());
        synchronized (this) { // the capacity check and the offer together, so the stop marker always fits
            if (closed) throw new RejectedExecutionException("the segmenter is closed");
            if (queue.size() >= config.queueCapacity()) {
                rejected.increment();
                throw new Overloaded("queue full (" + config.queueCapacity() + " requests waiting)");
            }
            queue.add(job);
        }
        return job.future();
    }

    public int queued() {
        return queue.size();
    }

    private void work() {
        while (true) {
            Job job;
            try {
                job = queue.take();
            } catch (InterruptedException e) {
                continue; // only close() ends the worker, after the queue drains
            }
            if (job == STOP) return;
            run(job);
        }
    }

    private void run(Job job) {
        CompletableFuture<Done> f = job.future();
        if (f.isCancelled()) {
            cancelled.increment();
            return;
        }
        long start = System.nanoTime();
        if (start > job.deadlineNanos()) {
            expired.increment();
            f.completeExceptionally(new TimeoutException("deadline passed after " + (start - job.submittedNanos()) / 1_000_000
                    + " ms in the queue"));
            return;
        }
        try {
            Request r = job.request();
            PromptCache.Lookup p = cache.prompt(seg, r.supports(), r.options().ignoreLabel());
            Result result = seg.segment(r.query(), p.prompt(), r.options());
            long end = System.nanoTime();
            record(end - job.submittedNanos());
            completed.increment();
            if (end > job.deadlineNanos()) {
                expired.increment();
                f.completeExceptionally(new TimeoutException("finished " + (end - job.deadlineNanos()) / 1_000_000 + " ms after its deadline"));
            } else if (!f.complete(new Done(result, (start - job.submittedNanos()) / 1_000_000, p.hit()))) {
                cancelled.increment();
            }
        } catch (RuntimeException | Error e) {
            failed.increment();
            f.completeExceptionally(e);
        }
    }

    private void record(long nanos) {
        long ms = nanos / 1_000_000;
        int b = 0;
        while (b < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[b]) b++;
        latency[b].incrementAndGet();
        latencyMicros.addAndGet(nanos / 1000);
    }

    public Stats stats() {
        long[] counts = new long[latency.length];
        for (int i = 0; i < counts.length; i++) counts[i] = latency[i].get();
        return new Stats(queue.size(), completed.sum(), failed.sum(), rejected.sum(), expired.sum(), cancelled.sum(),
                cache.hits.sum(), cache.misses.sum(), cache.bytes(), LATENCY_BUCKETS_MS.clone(), counts, latencyMicros.get() / 1e6);
    }

    /** Stops accepting requests, runs every queued one, and waits for the worker to finish them. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            queue.add(STOP);
        }
        try {
            worker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** LRU of encoded instructions kept on the host (so a device backend's memory is not held), by content hash. */
    static final class PromptCache {
        record Entry(float[] tokens, int[] tokensShape, float[] keyMask, float[] softKeyMask, int shots) {
            long bytes() {
                return 4L * (tokens.length + keyMask.length + softKeyMask.length) + 64;
            }
        }

        record Lookup(RefLdmSeg.Prompt prompt, boolean hit) {
        }

        private final long budget;
        private long bytes;
        private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
        final LongAdder hits = new LongAdder(), misses = new LongAdder();

        PromptCache(long budget) {
            this.budget = budget;
        }

        synchronized long bytes() {
            return bytes;
        }

        Lookup prompt(RefLdmSeg seg, List<Support> supports, int ignoreLabel) {
            if (budget == 0) return new Lookup(seg.prompt(supports, ignoreLabel), false);
            String key = key(supports, ignoreLabel);
            Backend be = seg.backend();
            Entry e;
            synchronized (this) {
                e = entries.get(key);
            }
            if (e != null) {
                hits.increment();
                return new Lookup(new RefLdmSeg.Prompt(be.tensor(e.tokens(), e.tokensShape()), be.tensor(e.keyMask(), 1, e.keyMask().length),
                        be.tensor(e.softKeyMask(), 1, e.softKeyMask().length), e.shots()), true);
            }
            misses.increment();
            RefLdmSeg.Prompt p = seg.prompt(supports, ignoreLabel);
            Entry fresh = new Entry(be.toHost(p.tokens()), p.tokens().shape(), be.toHost(p.keyMask()), be.toHost(p.softKeyMask()), p.shots());
            synchronized (this) {
                if (fresh.bytes() <= budget && entries.put(key, fresh) == null) {
                    bytes += fresh.bytes();
                    var it = entries.entrySet().iterator();
                    while (bytes > budget && it.hasNext()) {
                        bytes -= it.next().getValue().bytes();
                        it.remove();
                    }
                }
            }
            return new Lookup(p, false);
        }

        /** SHA-256 over each support's size, pixels and labels, and the ignore label. */
        static String key(List<Support> supports, int ignoreLabel) {
            try {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                d.update(ByteBuffer.allocate(8).putInt(supports.size()).putInt(ignoreLabel).array());
                for (Support s : supports) {
                    d.update(ByteBuffer.allocate(16).putInt(s.image().width()).putInt(s.image().height())
                            .putInt(s.mask().width()).putInt(s.mask().height()).array());
                    d.update(s.image().rgb());
                    d.update(s.mask().labels());
                }
                return java.util.HexFormat.of().formatHex(d.digest());
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e); // SHA-256 is in every JDK
            }
        }
    }
}
