// Writes the demo's bundled sample (samples/synth/) from held-out seed 2026 of the synthetic domain, by a fixed
// rule (no look at any model's output): the query is the first scene showing at least three kinds, the
// target kind is the one with the most visible pixels, the support is the next scene showing that kind.
// jshell --add-modules jdk.incubator.vector --class-path "refldmseg/target/refldmseg-0.1.0-SNAPSHOT.jar:$(ls refldmseg/target/lib/*.jar | tr "\n" :)" tools/train/demo_samples.jsh
import io.refldmseg.eval.SyntheticScenes;
import io.refldmseg.pipeline.ImageFiles;
import java.nio.file.Path;
long seed = 2026;
int q = 0;
while (true) {
    var s = SyntheticScenes.scene(seed, q);
    int shown = 0;
    for (int k = 0; k < 5; k++) if (s.contains(k)) shown++;
    if (shown >= 3) break;
    q++;
}
var query = SyntheticScenes.scene(seed, q);
int kind = 0;
int[] area = new int[5];
for (byte b : query.kindMap()) if (b >= 0) area[b]++;
for (int k = 1; k < 5; k++) if (area[k] > area[kind]) kind = k;
int sIdx = q + 1;
while (!SyntheticScenes.scene(seed, sIdx).contains(kind)) sIdx++;
var support = SyntheticScenes.scene(seed, sIdx);
Path dir = Path.of("samples/synth");
ImageFiles.writeRgb(dir.resolve("query.png"), query.image());
ImageFiles.writeRgb(dir.resolve("support.png"), support.image());
ImageFiles.writeMask(dir.resolve("support_mask.png"), 256, 256, support.mask(kind));
ImageFiles.writeMask(dir.resolve("query_truth.png"), 256, 256, query.mask(kind));
System.out.println("query scene " + q + ", support scene " + sIdx + ", kind " + SyntheticScenes.KINDS.get(kind));
/exit
