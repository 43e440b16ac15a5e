package io.refldmseg.cli;

/** Progress and status lines on stderr, kept apart from anything a command prints on stdout. */
final class Progress {
    private Progress() {
    }

    static void line(String s) {
        System.err.println("[refldmseg] " + s);
    }

    /** A progress bar for long jobs: done / total, items per second, ETA; redrawn in place on a terminal, a line every 5 % otherwise. */
    static final class Bar {
        private final String what;
        private final int total;
        private final long start = System.nanoTime();
        private final boolean terminal = System.console() != null;
        private int lastPercent = -1;

        Bar(String what, int total) {
            this.what = what;
            this.total = total;
        }

        synchronized void update(int done, int failed) {
            double secs = (System.nanoTime() - start) / 1e9, rate = done / Math.max(secs, 1e-9);
            long eta = rate > 0 ? Math.round((total - done) / rate) : -1;
            int percent = total == 0 ? 100 : done * 100 / total, width = 30, filled = total == 0 ? width : done * width / total;
            String bar = "[" + "#".repeat(filled) + ".".repeat(width - filled) + "] " + done + "/" + total + " " + what
                    + String.format(" %.2f/s", rate) + (eta >= 0 ? " ETA " + eta + " s" : "") + (failed > 0 ? ", " + failed + " failed" : "");
            if (terminal) {
                System.err.print("\r" + bar + (done == total ? "\n" : ""));
                System.err.flush();
            } else if (percent / 5 != lastPercent / 5 || done == total) {
                System.err.println("[refldmseg] " + bar);
            }
            lastPercent = percent;
        }
    }
}
