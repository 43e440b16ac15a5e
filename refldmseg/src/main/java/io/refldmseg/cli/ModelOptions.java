package io.refldmseg.cli;

import io.refldmseg.engine.Backend;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.engine.cuda.Cuda;
import io.refldmseg.engine.cuda.CudaBackend;
import io.refldmseg.pipeline.BundledModel;
import io.refldmseg.pipeline.Lora;
import io.refldmseg.pipeline.RefLdmSeg;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Where the networks come from and what runs them: shared by segment and video. */
final class ModelOptions {
    @Option(names = "--checkpoint", paramLabel = "FILE", description = "single-file SD checkpoint (original layout, .safetensors or .ckpt) for UNet and VAE")
    Path checkpoint;

    @Option(names = "--unet", paramLabel = "PATH", description = "UNet: file (diffusers/original/DeepSpeed .pt) or diffusers folder")
    Path unet;

    @Option(names = "--vae", paramLabel = "PATH", description = "VAE: file or diffusers folder")
    Path vae;

    @Option(names = "--clip", paramLabel = "PATH", description = "Alpha-CLIP vision tower: .pth/.safetensors (visual or OpenAI layout)")
    Path clip;

    @Option(names = "--arch", paramLabel = "f|n", description = "expected meta-architecture (default: from the UNet's input channels)")
    String arch;

    @Option(names = "--device", paramLabel = "cpu|cuda|auto", defaultValue = "auto", description = "compute device (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--threads", paramLabel = "N", description = "CPU threads this engine owns (default: every core; several engines on one"
            + " machine: cores / engines each)")
    Integer threads;

    @Option(names = "--gpu-memory-gib", paramLabel = "GIB", defaultValue = "16",
            description = "device memory for activations with --device cuda (default: ${DEFAULT-VALUE})")
    int gpuMemoryGib;

    @Option(names = "--lora", paramLabel = "FILE[:STRENGTH]", description = "LoRA for the UNet attention projections (repeatable)")
    List<String> loras = new ArrayList<>();

    /** The models given, or the bundled one when none is. */
    RefLdmSeg open() {
        return open(1).getFirst();
    }

    /**
     * {@code workers} engines of the same models for a {@link io.refldmseg.pipeline.Segmenter}, the
     * CPU threads (--threads, default every core) shared out evenly; only the first one reports.
     */
    List<RefLdmSeg> open(int workers) {
        int total = threads == null ? CpuBackend.cores() : threads;
        if (total < 1 || total > 4096) throw new Main.UserError("--threads must be in 1..4096, got " + total);
        if (workers < 1 || workers > 256) throw new Main.UserError("--workers must be in 1..256, got " + workers);
        if (workers > 1 && device.equalsIgnoreCase("cuda")) throw new Main.UserError("--workers above 1 needs the CPU (--device cpu or auto); a GPU runs one engine");
        if (workers > total) throw new Main.UserError("--workers " + workers + " needs at least as many --threads, got " + total);
        List<RefLdmSeg> engines = new ArrayList<>();
        try {
            for (int i = 0; i < workers; i++) engines.add(open(total / workers + (i < total % workers ? 1 : 0), i == 0));
        } catch (RuntimeException e) {
            engines.forEach(RefLdmSeg::close);
            throw e;
        }
        if (workers > 1) Progress.line(workers + " engines, " + total + " threads in all, each its own worker");
        return engines;
    }

    private RefLdmSeg open(int cpuThreads, boolean announce) {
        Path u = unet != null ? unet : checkpoint;
        Path v = vae != null ? vae : checkpoint;
        Path c = clip;
        if (u == null && v == null && c == null) {
            RefLdmSeg.Checkpoints bundled;
            try {
                bundled = BundledModel.checkpoints();
            } catch (IllegalStateException e) {
                throw new Main.UserError(e.getMessage());
            }
            if (announce) Progress.line("model: the bundled tiny Ref LDM-Seg-f trained on synthetic shapes (" + BundledModel.FOLDER
                    + "/MODEL_CARD.md); give --unet/--vae/--clip for real checkpoints");
            u = bundled.unet();
            v = bundled.vae();
            c = bundled.clip();
        }
        if (u == null || v == null || c == null)
            throw new Main.UserError("give all the models: --unet and --vae (or --checkpoint), and --clip (or none of them for the bundled model)");
        Backend backend = backend(cpuThreads, announce);
        RefLdmSeg seg;
        try {
            seg = RefLdmSeg.load(new RefLdmSeg.Checkpoints(u, v, c), backend, announce ? Progress::line : line -> { }).closingBackend();
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
        try {
            if (arch != null) {
                RefLdmSeg.Architecture want = switch (arch.toLowerCase()) {
                    case "f" -> RefLdmSeg.Architecture.F;
                    case "n" -> RefLdmSeg.Architecture.N;
                    default -> throw new Main.UserError("--arch must be f or n, got '" + arch + "'");
                };
                if (want != seg.architecture())
                    throw new Main.UserError("--arch " + arch + " needs a UNet with " + (want == RefLdmSeg.Architecture.N ? 8 : 4)
                            + " input channels, but " + u + " has the -" + seg.architecture().name().toLowerCase() + " UNet");
            }
            List<Lora.Adapter> adapters = new ArrayList<>();
            for (String spec : loras) {
                // FILE or FILE:STRENGTH (a colon followed by a path separator belongs to the file name)
                int colon = spec.lastIndexOf(':');
                boolean hasStrength = colon > 0 && !spec.substring(colon + 1).contains("/");
                Path file = Path.of(hasStrength ? spec.substring(0, colon) : spec);
                float strength = 1f;
                if (hasStrength) {
                    try {
                        strength = Float.parseFloat(spec.substring(colon + 1));
                    } catch (NumberFormatException e) {
                        throw new Main.UserError("--lora " + spec + ": strength '" + spec.substring(colon + 1) + "' is not a number");
                    }
                }
                Lora.Adapter a = seg.loadLora(file, strength);
                if (announce) Progress.line("LoRA " + file + " x " + strength + ": " + a.byProjection().size() + " projections");
                adapters.add(a);
            }
            seg.setLoras(adapters);
            return seg;
        } catch (RuntimeException e) {
            seg.close();
            throw e;
        }
    }

    private Backend backend(int cpuThreads, boolean announce) {
        return switch (device.toLowerCase()) {
            case "cpu" -> new CpuBackend(cpuThreads);
            case "auto" -> {
                Cuda.Probe probe = Cuda.probe();
                CpuBackend cpu = new CpuBackend(cpuThreads);
                String whyNotNative = CpuBackend.nativeKernelUnavailableReason();
                if (announce) Progress.line("device: " + cpu.name() + (whyNotNative == null ? "" : " (" + whyNotNative + ")") + (probe.device().isPresent()
                        ? " (found " + probe.device().get().name() + "; the CUDA backend has not been verified on a GPU yet, so auto"
                        + " stays on the CPU: --device cuda tries it)"
                        : " (CUDA unavailable: " + probe.reason() + ")"));
                yield cpu;
            }
            case "cuda" -> {
                Cuda.Probe probe = Cuda.probe();
                if (probe.device().isEmpty()) throw new Main.UserError("--device cuda: " + probe.reason());
                CudaBackend gpu = new CudaBackend(probe.device().get(), (long) gpuMemoryGib << 30);
                Progress.line("device: " + gpu.name() + ", " + gpuMemoryGib + " GiB activation arena");
                yield gpu;
            }
            default -> throw new Main.UserError("--device must be cpu, cuda or auto, got '" + device + "'");
        };
    }
}
