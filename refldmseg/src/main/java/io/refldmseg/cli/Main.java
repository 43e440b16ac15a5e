package io.refldmseg.cli;

import io.refldmseg.loader.CheckpointException;
import io.refldmseg.pipeline.ImageFiles;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code refldmseg}: the command line. User errors print one line and exit 2, never a stack trace. */
@Command(name = "refldmseg", mixinStandardHelpOptions = true, version = "refldmseg-java 0.1.0",
        description = "In-context segmentation with Ref LDM-Seg (Stable Diffusion 1.5 as a mask generator).",
        subcommands = {SegmentCommand.class, VideoCommand.class, DemoCommand.class, InspectCommand.class, ServeCommand.class, BatchCommand.class, EvaluateCommand.class, SynthCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a command: segment, video, serve, batch, evaluate, synth, demo or inspect");
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code (0 ok, 2 user error, 1 internal error). */
    public static int run(String... args) {
        return run(new java.io.PrintWriter(System.err, true), args);
    }

    /** Same, with errors and usage going to {@code err}. */
    public static int run(java.io.PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setErr(err);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof CheckpointException || e instanceof ImageFiles.ImageException || e instanceof IllegalArgumentException
                    || e instanceof UserError || e instanceof java.io.IOException) {
                cmd.getErr().println("error: " + e.getMessage());
                return 2;
            }
            // Not the user's fault: still one line, the stack trace only when asked for.
            if (System.getenv("REFLDMSEG_DEBUG") != null) e.printStackTrace(new java.io.PrintWriter(cmd.getErr(), true));
            cmd.getErr().println("error: internal error: " + e + " (a bug: please report it; REFLDMSEG_DEBUG=1 prints the stack trace)");
            return 1;
        });
        cl.setExitCodeExceptionMapper(e -> e instanceof CommandLine.ParameterException ? 2 : 1);
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            err.println("error: out of memory (" + e.getMessage() + "): the JVM has " + (Runtime.getRuntime().maxMemory() >> 20)
                    + " MiB of heap; give it more with -Xmx or use smaller inputs");
            return 1;
        }
    }

    /** A mistake in what the user asked for, reported as one line. */
    static final class UserError extends RuntimeException {
        UserError(String message) {
            super(message);
        }
    }
}
