package io.refldmseg.pipeline;

import io.refldmseg.engine.Backend;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * A request queue in front of one or more loaded {@link RefLdmSeg} engines of one model set:
 * {@link #submit} returns at once with a future; one worker thread per engine takes requests in
 * arrival order. Several engines on a share of the cores each run their requests side by side,
 * which pays where one engine's threads would idle between ops (small models, many cores; the
 * README has the measurements); each holds its own weights. Policy when the queue is full: the
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
 * <p>Dynamic batching: when the worker takes a request it also takes, for up to {@code maxWait},
 * later requests that can share its batch ({@link RefLdmSeg#batchable}: same shots, and for -n the
 * same steps, scheduler and guidance rows), up to {@code maxBatch}, and runs them as one
 * {@link RefLdmSeg#segmentBatch} (results equal to single runs bit for bit). A request that cannot
 * join waits for the next round, first in line; arrival order is otherwise kept.
 */
public final class Segmenter implements AutoCloseable {
    /**
     * @param queueCapacity     requests waiting beyond the one running
     * @param defaultDeadline   how long a request may wait and run before it fails, or null for no limit
     * @param promptCacheBytes  budget of the instruction cache (0 disables it)
     * @param maxBatch          most requests run as one batch (1: no batching)
     * @param maxWait           how long the worker waits for more requests to fill a batch (zero: only those already queued)
     */
    public record Config(int queueCapacity, Duration defaultDeadline, long promptCacheBytes, int maxBatch, Duration maxWait) {
        public Config {
            if (queueCapacity < 1) throw new IllegalArgumentException("queue capacity must be at least 1, got " + queueCapacity);
            if (promptCacheBytes < 0) throw new IllegalArgumentException("prompt cache budget must be >= 0, got " + promptCacheBytes);
            if (maxBatch < 1 || maxBatch > 256) throw new IllegalArgumentException("max batch must be in 1..256, got " + maxBatch);
            if (maxWait == null || maxWait.isNegative()) throw new IllegalArgumentException("max wait must be >= 0, got " + maxWait);
        }

        /** No batching. */
        public Config(int queueCapacity, Duration defaultDeadline, long promptCacheBytes) {
            this(queueCapacity, defaultDeadline, promptCacheBytes, 1, Duration.ZERO);
        }

        /** No batching by default: on the CPU a full-size -f batch of 4 is slower than four single runs today (see the README). */
        public static Config defaults() {
            return new Config(64, null, 256L << 20, 1, Duration.ZERO);
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
                        long[] latencyCounts, double latencySumSeconds, long[] batchSizeCounts, long batchFallbacks,
                        String lastBatchFailure) {
    }

    /** What a result came with: the result and how long it waited in the queue. */
    public record Done(Result result, long queueMillis, boolean promptCached) {
    }

    private record Job(Request request, long deadlineNanos, long submittedNanos, CompletableFuture<Done> future) {
    }

    private static final Job STOP = new Job(null, 0, 0, null);
    /** Upper bounds of the latency histogram, in ms (the last bucket is +Inf). */
    public static final long[] LATENCY_BUCKETS_MS = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

    private final List<RefLdmSeg> engines;
    private final Config config;
    private final BlockingQueue<Job> queue;
    private final List<Thread> workers = new ArrayList<>();
    private final PromptCache cache;
    private volatile boolean closed;
    private final LongAdder completed = new LongAdder(), failed = new LongAdder(), rejected = new LongAdder(),
            expired = new LongAdder(), cancelled = new LongAdder();
    private final AtomicLong[] latency = new AtomicLong[LATENCY_BUCKETS_MS.length + 1];
    private final AtomicLong latencyMicros = new AtomicLong();
    /** Batches run, by size (index 0 unused). */
    private final AtomicLongArray batchSizes;
    /** Batches that failed and were rerun one request at a time (e.g. out of memory at that batch size). */
    private final LongAdder batchFallbacks = new LongAdder();
    private volatile String lastBatchFailure = "";

    public Segmenter(RefLdmSeg seg, Config config) {
        this(List.of(seg), config);
    }

    /** One worker per engine; the engines must have been loaded from the same checkpoints (results do not depend on which runs a request). */
    public Segmenter(List<RefLdmSeg> engines, Config config) {
        if (engines.isEmpty()) throw new IllegalArgumentException("a segmenter needs at least one engine");
        for (RefLdmSeg e : engines)
            if (e.architecture() != engines.getFirst().architecture())
                throw new IllegalArgumentException("engines of one segmenter must run one architecture, got " + e.architecture() + " and " + engines.getFirst().architecture());
        this.engines = List.copyOf(engines);
        this.config = config;
        this.queue = new ArrayBlockingQueue<>(config.queueCapacity() + engines.size()); // + room for one stop marker per worker
        this.cache = new PromptCache(config.promptCacheBytes());
        for (int i = 0; i < latency.length; i++) latency[i] = new AtomicLong();
        this.batchSizes = new AtomicLongArray(config.maxBatch() + 1);
        for (int i = 0; i < engines.size(); i++) {
            RefLdmSeg seg = engines.get(i);
            workers.add(Thread.ofPlatform().name(engines.size() == 1 ? "refldmseg-segmenter" : "refldmseg-segmenter-" + i).daemon(true)
                    .start(() -> work(seg)));
        }
    }

    /** The first engine (the only one unless several were given). */
    public RefLdmSeg engine() {
        return engines.getFirst();
    }

    public List<RefLdmSeg> engines() {
        return engines;
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

    /** One worker's loop over {@code seg}: it takes one stop marker and returns when it has run what it holds. */
    private void work(RefLdmSeg seg) {
        java.util.ArrayDeque<Job> held = new java.util.ArrayDeque<>(); // taken from the queue but not batchable with the last batch
        boolean stopping = false;
        while (true) {
            Job first = held.pollFirst();
            if (first == null) {
                if (stopping) return;
                try {
                    first = queue.take();
                } catch (InterruptedException e) {
                    continue; // only close() ends the worker, after the queue drains
                }
                if (first == STOP) return;
            }
            List<Job> batch = new ArrayList<>(List.of(first));
            long until = System.nanoTime() + config.maxWait().toNanos();
            // earlier-held requests first (they arrived before anything still queued), then the queue
            for (var it = held.iterator(); it.hasNext() && batch.size() < config.maxBatch(); ) {
                Job j = it.next();
                if (seg.batchable(first.request(), j.request())) {
                    batch.add(j);
                    it.remove();
                }
            }
            while (batch.size() < config.maxBatch() && !stopping) {
                Job next;
                try {
                    long left = until - System.nanoTime();
                    next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                } catch (InterruptedException e) {
                    next = null;
                }
                if (next == null) break;
                if (next == STOP) stopping = true;
                else if (seg.batchable(first.request(), next.request())) batch.add(next);
                else held.addLast(next);
            }
            run(seg, batch);
        }
    }

    /** Runs the live requests of {@code batch} as one batch (each alone if the batch fails, so one bad request fails only itself). */
    private void run(RefLdmSeg seg, List<Job> batch) {
        List<Job> live = new ArrayList<>();
        List<PromptCache.Lookup> prompts = new ArrayList<>();
        for (Job job : batch) {
            CompletableFuture<Done> f = job.future();
            if (f.isCancelled()) {
                cancelled.increment();
                continue;
            }
            long start = System.nanoTime();
            if (start > job.deadlineNanos()) {
                expired.increment();
                f.completeExceptionally(new TimeoutException("deadline passed after " + (start - job.submittedNanos()) / 1_000_000
                        + " ms in the queue"));
                continue;
            }
            try {
                Request r = job.request();
                prompts.add(cache.prompt(seg, r.supports(), r.options().ignoreLabel()));
                live.add(job);
            } catch (RuntimeException | Error e) {
                failed.increment();
                f.completeExceptionally(e);
            }
        }
        if (live.isEmpty()) return;
        long start = System.nanoTime();
        if (live.size() > 1) {
            List<Result> results;
            try {
                results = seg.segmentBatch(live.stream().map(j -> j.request().query()).toList(),
                        prompts.stream().map(PromptCache.Lookup::prompt).toList(), live.stream().map(j -> j.request().options()).toList());
            } catch (RuntimeException | OutOfMemoryError e) {
                results = null;
                batchFallbacks.increment();
                lastBatchFailure = "batch of " + live.size() + ": " + e;
            }
            if (results != null) {
                batchSizes.incrementAndGet(live.size());
                for (int i = 0; i < live.size(); i++) finish(live.get(i), results.get(i), start, prompts.get(i).hit());
                return;
            }
        }
        for (int i = 0; i < live.size(); i++) {
            Job job = live.get(i);
            long t = System.nanoTime();
            try {
                Result result = seg.segment(job.request().query(), prompts.get(i).prompt(), job.request().options());
                batchSizes.incrementAndGet(1);
                finish(job, result, t, prompts.get(i).hit());
            } catch (RuntimeException | Error e) {
                failed.increment();
                job.future().completeExceptionally(e);
            }
        }
    }

    private void finish(Job job, Result result, long start, boolean promptCached) {
        CompletableFuture<Done> f = job.future();
        long end = System.nanoTime();
        record(end - job.submittedNanos());
        completed.increment();
        if (end > job.deadlineNanos()) {
            expired.increment();
            f.completeExceptionally(new TimeoutException("finished " + (end - job.deadlineNanos()) / 1_000_000 + " ms after its deadline"));
        } else if (!f.complete(new Done(result, (start - job.submittedNanos()) / 1_000_000, promptCached))) {
            cancelled.increment();
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
        long[] sizes = new long[batchSizes.length()];
        for (int i = 0; i < sizes.length; i++) sizes[i] = batchSizes.get(i);
        return new Stats(queue.size(), completed.sum(), failed.sum(), rejected.sum(), expired.sum(), cancelled.sum(),
                cache.hits.sum(), cache.misses.sum(), cache.bytes(), LATENCY_BUCKETS_MS.clone(), counts, latencyMicros.get() / 1e6, sizes,
                batchFallbacks.sum(), lastBatchFailure);
    }

    /** Stops accepting requests, runs every queued one, and waits for the workers to finish them. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            for (int i = 0; i < workers.size(); i++) queue.add(STOP); // queued requests are ahead of every marker
        }
        try {
            for (Thread worker : workers) worker.join();
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
