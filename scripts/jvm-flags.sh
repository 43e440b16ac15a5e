# Sourced by scripts/jdk.sh and scripts/gpu-run (which runs without a JDK): the JVM flags every
# launch of the engine takes; pom.xml's engine.jvm.flags repeats them for the tests. The
# CompileCommands make the JIT inline the small Vector API helpers that take or return vectors
# wherever they are called: once one of them has been compiled on its own into a big method the
# JIT stops inlining it, its vectors become heap objects, and an element-wise op runs 20-30x
# slower (seen: gelu 0.9 -> 25 ms after silu).
export REFLDMSEG_JVM_FLAGS="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:CompileCommand=quiet \
-XX:CompileCommand=inline,io.refldmseg.engine.cpu.VectorMath::*"
