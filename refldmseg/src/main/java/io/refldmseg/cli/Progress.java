package io.refldmseg.cli;

/** Progress and status lines on stderr, kept apart from anything a command prints on stdout. */
final class Progress {
    private Progress() {
    }

    static void line(String s) {
        System.err.println("[refldmseg] " + s);
    }
}
