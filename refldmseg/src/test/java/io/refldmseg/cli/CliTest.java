package io.refldmseg.cli;

import io.refldmseg.engine.Golden;
import io.refldmseg.loader.Fixtures;
import io.refldmseg.loader.SafeTensors;
import io.refldmseg.loader.TensorData;
import io.refldmseg.loader.TensorFile;
import io.refldmseg.engine.cpu.CpuBackend;
import io.refldmseg.pipeline.Augmentation;
import io.refldmseg.pipeline.ImageFiles;
import io.refldmseg.pipeline.Options;
import io.refldmseg.pipeline.RefLdmSeg;
import io.refldmseg.pipeline.RgbImage;
import io.refldmseg.pipeline.Support;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The CLI end to end: the four pipeline fixtures from image files, and every kind of bad input. */
class CliTest {
    @TempDir
    Path dir;

    static final String UNET = Fixtures.file("unet_diffusers.safetensors").toString(), UNET8 = Fixtures.file("unet8_diffusers.safetensors").toString(),
            VAE = Fixtures.file("vae_diffusers.safetensors").toString(), CLIP = Fixtures.file("alphaclip_visual.safetensors").toString();

    record Run(int code, String err) {
    }

    static Run cli(String... args) {
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(err, true), args);
        return new Run(code, err.toString());
    }

    /** Writes a pipe fixture's query, supports and raw label masks (0/1/255) as PNG files; returns the CLI arguments. */
    List<String> writeInputs(TensorFile f) throws IOException {
        List<String> args = new ArrayList<>();
        TensorData q = f.tensor("query_u8_hwc"), sx = f.tensor("support_u8_hwc"), sy = f.tensor("sy");
        Path query = dir.resolve("query.png");
        ImageFiles.writeOverlay(query, new io.refldmseg.pipeline.RgbImage(q.dim(1), q.dim(0), bytes(q)), new byte[q.dim(0) * q.dim(1)]);
        args.addAll(List.of("--query", query.toString()));
        byte[] sxb = bytes(sx), syb = bytes(sy);
        int h = sy.dim(2), w = sy.dim(3);
        for (int i = 0; i < sx.dim(0); i++) {
            Path s = dir.resolve("support" + i + ".png"), m = dir.resolve("mask" + i + ".png");
            ImageFiles.writeOverlay(s, new io.refldmseg.pipeline.RgbImage(w, h, Arrays.copyOfRange(sxb, i * h * w * 3, (i + 1) * h * w * 3)), new byte[h * w]);
            ImageFiles.writeLabels(m, w, h, Arrays.copyOfRange(syb, i * h * w, (i + 1) * h * w));
            args.addAll(List.of("--support", s.toString(), "--support-mask", m.toString()));
        }
        args.addAll(List.of("--ignore-label", "255", "--mask-alpha", String.valueOf(f.tensor("mask_alpha").toFloats()[0])));
        return args;
    }

    static byte[] bytes(TensorData t) {
        return t.contiguousBytes().toArray(ValueLayout.JAVA_BYTE);
    }

    /** --categories with --support-views: each category is its own support's views, as segmentCategories takes them. */
    @Test
    void categoriesWithSupportViews() throws IOException {
        try (TensorFile f = TensorFile.open(Fixtures.file("pipe_f2.safetensors"))) {
            List<String> args = new ArrayList<>(List.of("segment", "--unet", UNET, "--vae", VAE, "--clip", CLIP, "--device", "cpu", "--arch", "f",
                    "--categories", "--support-views", "2"));
            args.addAll(writeInputs(f));
            Path out = dir.resolve("categories_views.png");
            args.addAll(List.of("--out", out.toString()));
            Run r = cli(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            Options o = Options.defaults().withIgnoreLabel(255).withMaskAlpha(f.tensor("mask_alpha").toFloats()[0]);
            RgbImage q = ImageFiles.readRgb(dir.resolve("query.png"));
            try (RefLdmSeg seg = RefLdmSeg.load(new RefLdmSeg.Checkpoints(Path.of(UNET), Path.of(VAE), Path.of(CLIP)), new CpuBackend(CpuBackend.cores()), s -> {
            }).closingBackend()) {
                List<List<Support>> perCategory = new ArrayList<>();
                for (int i = 0; i < 2; i++) {
                    Support s = new Support(ImageFiles.readRgb(dir.resolve("support" + i + ".png")), ImageFiles.readLabels(dir.resolve("mask" + i + ".png")));
                    perCategory.add(List.of(s, new Support(Augmentation.apply(2, s.image()), Augmentation.apply(2, s.mask()))));
                }
                byte[] viewed = seg.segmentCategories(q, perCategory, o).labels();
                assertArrayEquals(viewed, ImageFiles.readLabels(out).labels());
                byte[] plain = seg.segmentCategories(q, perCategory.stream().map(c -> List.of(c.getFirst())).toList(), o).labels();
                assertFalse(Arrays.equals(plain, viewed), "on these inputs the views change the label map, so the comparison above can tell them apart");
            }
        }
    }

    @Test
    void pipelineFixturesThroughTheCli() throws IOException {
        for (String pipe : new String[]{"pipe_f1", "pipe_f2", "pipe_n_ddpm", "pipe_n_ddim"}) {
            try (TensorFile f = TensorFile.open(Fixtures.file(pipe + ".safetensors"))) {
                boolean n = pipe.startsWith("pipe_n");
                List<String> args = new ArrayList<>(List.of("segment", "--unet", n ? UNET8 : UNET, "--vae", VAE, "--clip", CLIP, "--device", "cpu"));
                args.addAll(writeInputs(f));
                Path out = dir.resolve(pipe + ".png"), overlay = dir.resolve(pipe + "_overlay.png"), saved = dir.resolve(pipe + ".safetensors");
                args.addAll(List.of("--out", out.toString(), "--overlay", overlay.toString(), "--save-tensors", saved.toString()));
                if (n) {
                    Path noise = dir.resolve("noise.safetensors");
                    java.util.Map<String, SafeTensors.WriteEntry> e = new java.util.LinkedHashMap<>();
                    e.put("init_noise", SafeTensors.WriteEntry.f32(f.tensor("init_noise").toFloats(), 1, 4, 32, 32));
                    if (pipe.endsWith("ddpm")) e.put("step_noise", SafeTensors.WriteEntry.f32(f.tensor("step_noise").toFloats(), 20, 1, 4, 32, 32));
                    SafeTensors.write(noise, e, Map.of());
                    args.addAll(List.of("--arch", "n", "--noise", noise.toString(), "--steps", "20", "--scheduler", pipe.endsWith("ddpm") ? "ddpm" : "ddim"));
                } else {
                    args.addAll(List.of("--arch", "f"));
                }
                Run r = cli(args.toArray(String[]::new));
                assertEquals(0, r.code(), r.err());
                try (TensorFile s = TensorFile.open(saved)) {
                    for (String key : new String[]{"prompt_embeds", "logits", n ? "final_latents" : "unet_pred", n ? "image_latents" : "latent"})
                        assertTrue(s.tensors().containsKey(key), key + " saved");
                    Golden.assertClose(pipe + " logits via CLI", f.tensor("logits").toFloats(), s.tensor("logits").toFloats(),
                            Golden.tolerance(pipe + "/logits"));
                    float[] refLogits = f.tensor("logits").toFloats(), refMask = f.tensor("mask").toFloats();
                    var png = ImageFiles.readLabels(out);
                    int pixels = refMask.length;
                    for (int p = 0; p < pixels; p++)
                        if (Math.abs(refLogits[pixels + p] - refLogits[p]) > 1e-3)
                            assertEquals(refMask[p] != 0, png.labels()[p] != 0, pipe + " mask PNG pixel " + p);
                }
                assertTrue(Files.size(overlay) > 0);
            }
        }
    }

    void assertUserError(String fragment, String... args) {
        Run r = cli(args);
        assertEquals(2, r.code(), "exit code for " + fragment + ": " + r.err());
        assertTrue(r.err().contains(fragment), "message '" + fragment + "' in: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    @Test
    void badInputGivesOneLineAndExitCode2() throws IOException {
        Path samples = Fixtures.dir().resolve("../../samples").normalize();
        String q = samples.resolve("query.png").toString(), s = samples.resolve("support.png").toString(), m = samples.resolve("support_mask.png").toString();
        String[] models = {"--unet", UNET, "--vae", VAE, "--clip", CLIP};
        assertUserError("no such file", concat(models, "segment", "--query", dir.resolve("missing.png").toString(), "--support", s, "--support-mask", m));
        Path text = dir.resolve("notanimage.png");
        Files.writeString(text, "hello");
        assertUserError("not a readable image", concat(models, "segment", "--query", text.toString(), "--support", s, "--support-mask", m));
        Path small = dir.resolve("small_mask.png");
        ImageFiles.writeMask(small, 10, 12, new byte[120]);
        assertUserError("but its support image", concat(models, "segment", "--query", q, "--support", s, "--support-mask", small.toString()));
        assertUserError("give one mask per support", concat(models, "segment", "--query", q, "--support", s, "--support", s, "--support-mask", m));
        assertUserError("at least one --support", concat(models, "segment", "--query", q));
        assertUserError("--steps must be in 1..1000", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--steps", "0"));
        assertUserError("--arch n needs a UNet with 8 input channels", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--arch", "n"));
        assertUserError("no such file or folder", "segment", "--unet", dir.resolve("nope.safetensors").toString(), "--vae", VAE, "--clip", CLIP,
                "--query", q, "--support", s, "--support-mask", m);
        assertUserError("--device cuda", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--device", "cuda"));
        String lora = dir.resolve("missing_lora.safetensors").toString();
        assertUserError(lora + ": no such file", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--lora", lora + ":0.5"));
        assertUserError("strength 'strong' is not a number", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--lora", lora + ":strong"));
        assertUserError("--tta must be 1, 2, 4 or 8, got 3", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--tta", "3"));
        assertUserError("--tta 2 cannot be combined with --save-tensors", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m,
                "--tta", "2", "--save-tensors", dir.resolve("t.safetensors").toString()));
    }

    @Test
    void attentionResearchOptionsDumpMapsAndChangeTheMask() throws IOException {
        Path samples = Fixtures.dir().resolve("../../samples").normalize();
        String q = samples.resolve("query.png").toString(), s = samples.resolve("support.png").toString(), m = samples.resolve("support_mask.png").toString();
        String[] models = {"--unet", UNET, "--vae", VAE, "--clip", CLIP};
        Path att = dir.resolve("att.safetensors"), maps = dir.resolve("maps"), hard = dir.resolve("hard.png"), soft = dir.resolve("soft.png");
        Run r = cli(concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--out", hard.toString(),
                "--save-attention", att.toString(), "--attention-maps", maps.toString()));
        assertEquals(0, r.code(), r.err());
        try (io.refldmseg.loader.TensorFile tf = io.refldmseg.loader.TensorFile.open(att)) {
            assertEquals(16, tf.tensors().size(), tf.tensors().keySet().toString());
            io.refldmseg.loader.TensorData t = tf.tensor("down_blocks.0.attentions.0.transformer_blocks.0.attn2");
            assertEquals(4, t.rank());
            assertEquals(1, t.shape()[0]);
            assertEquals(256, t.shape()[3], "Lk: one shot's 16 x 16 tokens");
        }
        assertTrue(Files.exists(maps.resolve("contact_sheet.png")) && Files.exists(maps.resolve("mean.png")));
        assertEquals(256, ImageFiles.readRgb(maps.resolve("mid_block.attentions.0.transformer_blocks.0.attn2.png")).width());
        Path attN = dir.resolve("att_n.safetensors");
        Run rn = cli(concat(new String[]{"--unet", UNET8, "--vae", VAE, "--clip", CLIP}, "segment", "--query", q, "--support", s, "--support-mask", m,
                "--out", dir.resolve("n.png").toString(), "--steps", "2", "--save-attention", attN.toString(),
                "--save-attention-layers", "mid_block*attn2"));
        assertEquals(0, rn.code(), rn.err());
        try (io.refldmseg.loader.TensorFile tf = io.refldmseg.loader.TensorFile.open(attN)) {
            assertEquals(java.util.Set.of("mid_block.attentions.0.transformer_blocks.0.attn2@step0", "mid_block.attentions.0.transformer_blocks.0.attn2@step1"),
                    tf.tensors().keySet());
            assertEquals(3, tf.tensor("mid_block.attentions.0.transformer_blocks.0.attn2@step1").shape()[0], "B = 3: text, image, unconditioned");
        }
        Run r2 = cli(concat(models, "segment", "--query", q, "--support", s, "--support-mask", m, "--out", soft.toString(), "--mask-mode", "soft"));
        assertEquals(0, r2.code(), r2.err());
        assertUserError("--mask-layers: no attention layer matches 'up_blocks.9*'", concat(models, "segment", "--query", q, "--support", s,
                "--support-mask", m, "--mask-mode", "none", "--mask-layers", "up_blocks.9*"));
        assertUserError("--mask-mode must be hard, soft or none", concat(models, "segment", "--query", q, "--support", s,
                "--support-mask", m, "--mask-mode", "fuzzy"));
    }

    @Test
    void hostileOptionsAreRefusedBeforeAnyModelLoads() throws IOException {
        Path samples = Fixtures.dir().resolve("../../samples").normalize();
        String q = samples.resolve("query.png").toString(), s = samples.resolve("support.png").toString(), m = samples.resolve("support_mask.png").toString();
        // models that do not exist: a message about them would mean the options were checked too late
        String[] absent = {"--unet", dir.resolve("absent_unet.safetensors").toString(), "--vae", VAE, "--clip", CLIP};
        assertUserError("--guidance must be a finite number", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--guidance", "NaN"));
        assertUserError("--guidance must be a finite number", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--guidance", "Infinity"));
        assertUserError("--image-guidance must be a finite number", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--image-guidance", "-Infinity"));
        assertUserError("--steps must be in 1..1000", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--steps", "100000"));
        Path notAFolder = dir.resolve("plain.txt");
        Files.writeString(notAFolder, "x");
        assertUserError("is not a folder", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--out", notAFolder.resolve("mask.png").toString()));
        assertUserError("--overlay", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--overlay", notAFolder.resolve("o.png").toString()));
        assertUserError("is a folder", concat(absent, "segment", "--query", q, "--support", s, "--support-mask", m, "--out", dir.toString()));
        String[] models = {"--unet", UNET, "--vae", VAE, "--clip", CLIP};
        assertUserError("expected a safetensors file with init_noise", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m,
                "--noise", Fixtures.file("alphaclip_visual.pth").toString()));
        assertUserError("LoRA strength must be a finite number", concat(models, "segment", "--query", q, "--support", s, "--support-mask", m,
                "--lora", Fixtures.file("unet_diffusers.safetensors") + ":NaN"));
        Path huge = dir.resolve("huge.png");
        Files.write(huge, io.refldmseg.pipeline.HostileImageTest.pngHeader(20000, 20000));
        assertUserError("more than the limit", concat(models, "segment", "--query", huge.toString(), "--support", s, "--support-mask", m));
    }

    @Test
    void demoWritesMaskAndOverlay() throws IOException {
        String home = System.getProperty("refldmseg.home");
        System.setProperty("refldmseg.home", Fixtures.dir().resolve("../..").normalize().toString());
        try {
            java.io.PrintStream stderr = System.err;
            java.io.ByteArrayOutputStream lines = new java.io.ByteArrayOutputStream();
            Run r;
            System.setErr(new java.io.PrintStream(lines, true, java.nio.charset.StandardCharsets.UTF_8));
            try {
                r = cli("demo", "--out-dir", dir.toString());
            } finally {
                System.setErr(stderr);
            }
            String progress = lines.toString(java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(0, r.code(), r.err());
            assertEquals(256, ImageFiles.readLabels(dir.resolve("demo_mask.png")).width());
            assertEquals(256, ImageFiles.readRgb(dir.resolve("demo_overlay.png")).width());
            // the printed IoU is the written mask's against the sample's truth
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("IoU against the scene's ground truth .*: ([0-9.]+)").matcher(progress);
            assertTrue(m.find(), progress);
            Path truth = Fixtures.dir().resolve("../../samples/synth/query_truth.png").normalize();
            double iou = io.refldmseg.eval.Metrics.overlap(ImageFiles.readLabels(dir.resolve("demo_mask.png")).labels(),
                    ImageFiles.readLabels(truth).labels(), -1).iou();
            assertEquals(iou, Double.parseDouble(m.group(1)), 1e-3, "demo IoU as printed");
            // no floor on this one sample: its score swings between trainings of the same model (stage 1 0.696,
            // stage 2 0.193, stage 3 0.058, stage 4 0.873, stage 5 0.278); the bundled model's quality is held by EvaluateTest and BundledModelTest
        } finally {
            if (home == null) System.clearProperty("refldmseg.home");
            else System.setProperty("refldmseg.home", home);
        }
    }

    static String[] concat(String[] models, String cmd, String... rest) {
        List<String> all = new ArrayList<>();
        all.add(cmd);
        all.addAll(List.of(models));
        all.addAll(List.of(rest));
        return all.toArray(String[]::new);
    }
}
