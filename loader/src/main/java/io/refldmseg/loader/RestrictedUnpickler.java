package io.refldmseg.loader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A pickle reader that builds only data: dicts, lists, tuples, sets, strings, bytes, numbers,
 * booleans, None, and PyTorch tensor references. Every GLOBAL is checked against an allow-list
 * of constructors that this class implements itself; nothing named by the pickle is ever looked
 * up or executed, and any other global is refused with its name.
 *
 * <p>Tuples come back as unmodifiable {@link List}s, lists as {@link ArrayList}s, dicts as
 * {@link LinkedHashMap}s (OrderedDict too), tensors as {@link PickledTensor}.
 */
final class RestrictedUnpickler {

    /** A persistent-id storage reference: ('storage', storage_type, key, location, numel). */
    record StorageRef(DType dtype, String key, long numel) {
    }

    /** The arguments of torch._utils._rebuild_tensor_v2, not yet bound to bytes. */
    record PickledTensor(StorageRef storage, long offset, long[] shape, long[] stride) {
    }

    /** An allow-listed global; what calling it builds is decided in {@link #call}. */
    private record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    private static final Set<String> ALLOWED = Set.of(
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_tensor",
            "torch._utils._rebuild_parameter",
            "torch.Size",
            "builtins.set", "builtins.frozenset", "__builtin__.set",
            "_codecs.encode");

    private static final Object MARK = new Object();

    /** Bounds on what a pickle may build: far above any real checkpoint, far below what exhausts a JVM. */
    static final int MAX_STACK = 1 << 22, MAX_MEMO = 1 << 22;
    /** Dict keys and set members are hashed: only scalars and tuples of them up to this many nodes and this depth. */
    static final int MAX_KEY_NODES = 4096, MAX_KEY_DEPTH = 16;

    private final String source;
    private final ByteBuffer in;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private RestrictedUnpickler(String source, ByteBuffer in) {
        this.source = source;
        this.in = in.order(ByteOrder.LITTLE_ENDIAN);
    }

    static Object load(String source, ByteBuffer pickle) {
        try {
            return new RestrictedUnpickler(source, pickle).run();
        } catch (java.nio.BufferUnderflowException e) {
            throw new CheckpointException(source + ": pickle ends early (truncated data.pkl)");
        }
    }

    private Object run() {
        while (true) {
            if (!in.hasRemaining()) throw fail("pickle ends without STOP (truncated data.pkl)");
            int pos = in.position();
            int op = in.get() & 0xff;
            switch (op) {
                case 0x80 -> in.get(); // PROTO
                case 0x95 -> in.getLong(); // FRAME
                case '.' -> {
                    if (stack.size() != 1) throw fail("STOP with " + stack.size() + " items on the stack");
                    return stack.getFirst();
                }
                case '(' -> {
                    marks.add(stack.size());
                    stack.add(MARK);
                }
                case '}' -> push(new LinkedHashMap<>());
                case ']' -> push(new ArrayList<>());
                case ')' -> push(List.of());
                case 0x8f -> push(new LinkedHashSet<>()); // EMPTY_SET
                case 't' -> push(tuple(popMark()));
                case 0x85 -> push(tuple(Collections.singletonList(pop())));
                case 0x86 -> {
                    Object b = pop(), a = pop();
                    push(tuple(Arrays.asList(a, b)));
                }
                case 0x87 -> {
                    Object c = pop(), b = pop(), a = pop();
                    push(tuple(Arrays.asList(a, b, c)));
                }
                case 'q' -> memoPut(in.get() & 0xff);
                case 'r' -> memoPut(in.getInt() & 0xffffffffL);
                case 0x94 -> memoPut(memo.size()); // MEMOIZE
                case 'h' -> push(memoGet(in.get() & 0xff));
                case 'j' -> push(memoGet(in.getInt() & 0xffffffffL));
                case 'c' -> push(global(readLine(), readLine()));
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop(), module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) throw fail("STACK_GLOBAL without strings");
                    push(global(m, n));
                }
                case 'R' -> {
                    Object args = pop(), fn = pop();
                    push(call(fn, args));
                }
                case 0x81 -> { // NEWOBJ: cls.__new__(cls, *args)
                    Object args = pop(), cls = pop();
                    push(call(cls, args));
                }
                case 'b' -> build(pop(), peek());
                case 's' -> {
                    Object v = pop(), k = pop();
                    asDict(peek()).put(hashable(k, "dict key"), v);
                }
                case 'u' -> {
                    List<Object> items = popMark();
                    Map<Object, Object> d = asDict(peek());
                    if (items.size() % 2 != 0) throw fail("SETITEMS with an odd number of items");
                    for (int i = 0; i < items.size(); i += 2) d.put(hashable(items.get(i), "dict key"), items.get(i + 1));
                }
                case 'a' -> {
                    Object v = pop();
                    asList(peek()).add(v);
                }
                case 'e' -> {
                    List<Object> items = popMark();
                    asList(peek()).addAll(items);
                }
                case 0x90 -> { // ADDITEMS
                    List<Object> items = popMark();
                    if (!(peek() instanceof Set<?>)) throw fail("ADDITEMS on a non-set");
                    @SuppressWarnings("unchecked") Set<Object> s = (Set<Object>) peek();
                    s.addAll(hashableAll(items));
                }
                case 0x91 -> push(Collections.unmodifiableSet(new LinkedHashSet<>(hashableAll(popMark())))); // FROZENSET
                case 'J' -> push((long) in.getInt());
                case 'K' -> push((long) (in.get() & 0xff));
                case 'M' -> push((long) (in.getShort() & 0xffff));
                case 0x8a -> push(readLong(in.get() & 0xff));
                case 0x8b -> push(readLong(in.getInt()));
                case 'G' -> push(readBigEndianDouble());
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'X' -> push(readString(in.getInt() & 0xffffffffL));
                case 0x8c -> push(readString(in.get() & 0xff));
                case 0x8d -> push(readString(in.getLong()));
                case 'T' -> push(readString(in.getInt() & 0xffffffffL));
                case 'U' -> push(readString(in.get() & 0xff));
                case 'B' -> push(readBytes(in.getInt() & 0xffffffffL));
                case 'C' -> push(readBytes(in.get() & 0xff));
                case 0x8e -> push(readBytes(in.getLong()));
                case 'Q' -> push(persistentLoad(pop()));
                case '0' -> pop();
                case '1' -> popMark();
                case '2' -> push(peek());
                default -> throw fail(String.format("unsupported pickle opcode 0x%02x at byte %d (only data-building opcodes are accepted)", op, pos));
            }
        }
    }

    private double readBigEndianDouble() {
        in.order(ByteOrder.BIG_ENDIAN);
        double d = in.getDouble();
        in.order(ByteOrder.LITTLE_ENDIAN);
        return d;
    }

    private Object global(String module, String name) {
        Global g = new Global(module, name);
        String q = g.qualified();
        if (ALLOWED.contains(q) || DType.fromTorchStorage(q).isPresent()) return g;
        throw fail("refusing global '" + q + "': not on the allow-list of data constructors (nothing in a checkpoint is executed)");
    }

    private Object call(Object fn, Object argsObj) {
        if (!(fn instanceof Global g)) throw fail("REDUCE on a non-callable " + describe(fn));
        List<?> args = asTuple(argsObj);
        return switch (g.qualified()) {
            case "collections.OrderedDict" -> new LinkedHashMap<>();
            case "torch.Size" -> args.isEmpty() ? List.of() : tuple(new ArrayList<>(asTuple(args.getFirst())));
            case "builtins.set", "__builtin__.set" -> args.isEmpty() ? new LinkedHashSet<>() : new LinkedHashSet<>(hashableAll(asCollection(args.getFirst())));
            case "builtins.frozenset" -> args.isEmpty() ? Set.of() : Collections.unmodifiableSet(new LinkedHashSet<>(hashableAll(asCollection(args.getFirst()))));
            case "_codecs.encode" -> {
                if (args.isEmpty() || !(args.getFirst() instanceof String s)) throw fail("_codecs.encode without a string");
                yield s.getBytes(StandardCharsets.ISO_8859_1);
            }
            case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor" -> rebuildTensor(args);
            case "torch._utils._rebuild_parameter" -> {
                if (args.isEmpty() || !(args.getFirst() instanceof PickledTensor t)) throw fail("_rebuild_parameter without a tensor");
                yield t;
            }
            default -> throw fail("global '" + g.qualified() + "' cannot be called");
        };
    }

    private PickledTensor rebuildTensor(List<?> args) {
        if (args.size() < 4 || !(args.get(0) instanceof StorageRef storage))
            throw fail("_rebuild_tensor_v2 with unexpected arguments " + describe(args));
        long offset = asLong(args.get(1));
        long[] shape = longs(args.get(2));
        long[] stride = longs(args.get(3));
        if (shape.length != stride.length) throw fail("tensor with shape " + Arrays.toString(shape) + " but stride " + Arrays.toString(stride));
        return new PickledTensor(storage, offset, shape, stride);
    }

    private Object persistentLoad(Object pid) {
        List<?> t = asTuple(pid);
        if (t.size() != 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Global g) || !(t.get(2) instanceof String key))
            throw fail("unsupported persistent id " + describe(pid));
        DType dtype = DType.fromTorchStorage(g.qualified())
                .orElseThrow(() -> fail("unsupported storage type '" + g.qualified() + "'"));
        long numel = asLong(t.get(4));
        if (numel < 0) throw fail("storage '" + key + "' declares " + numel + " elements");
        return new StorageRef(dtype, key, numel);
    }

    private void build(Object state, Object target) {
        // OrderedDicts of state dicts carry a '_metadata' attribute (a dict of versions); data only.
        if (target instanceof Map<?, ?> || target instanceof PickledTensor) return;
        throw fail("BUILD on " + describe(target) + " is not supported");
    }

    private long[] longs(Object o) {
        List<?> l = asTuple(o);
        long[] r = new long[l.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = asLong(l.get(i));
            if (r[i] < 0) throw fail("negative size or stride " + r[i]);
        }
        return r;
    }

    private long asLong(Object o) {
        if (o instanceof Long l) return l;
        if (o instanceof java.math.BigInteger b && b.bitLength() < 64) return b.longValue();
        throw fail("expected an integer, found " + describe(o));
    }

    private List<?> asTuple(Object o) {
        if (o instanceof List<?> l) return l;
        throw fail("expected a tuple, found " + describe(o));
    }

    private java.util.Collection<?> asCollection(Object o) {
        if (o instanceof java.util.Collection<?> c) return c;
        throw fail("expected a collection, found " + describe(o));
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> asDict(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw fail("SETITEM on " + describe(o));
    }

    @SuppressWarnings("unchecked")
    private List<Object> asList(Object o) {
        if (o instanceof ArrayList<?> l) return (List<Object>) l;
        throw fail("APPEND on " + describe(o));
    }

    private static List<Object> tuple(List<Object> items) {
        return Collections.unmodifiableList(new ArrayList<>(items));
    }

    private Object readLong(int n) {
        if (n < 0 || n > in.remaining()) throw fail("LONG of " + n + " bytes runs past the pickle");
        byte[] b = new byte[n];
        in.get(b);
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) be[i] = b[n - 1 - i];
        java.math.BigInteger v = n == 0 ? java.math.BigInteger.ZERO : new java.math.BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private String readString(long n) {
        return new String(readBytes(n), StandardCharsets.UTF_8);
    }

    private byte[] readBytes(long n) {
        if (n < 0 || n > in.remaining()) throw fail("string of " + n + " bytes runs past the pickle (truncated?)");
        byte[] b = new byte[(int) n];
        in.get(b);
        return b;
    }

    private String readLine() {
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (!in.hasRemaining()) throw fail("GLOBAL name runs past the pickle");
            char c = (char) (in.get() & 0xff);
            if (c == '\n') return sb.toString();
            sb.append(c);
        }
    }

    private void push(Object o) {
        if (stack.size() >= MAX_STACK) throw fail("pickle stack deeper than " + MAX_STACK + " items");
        stack.add(o);
    }

    private void memoPut(long key) {
        if (memo.size() >= MAX_MEMO && !memo.containsKey(key)) throw fail("pickle memo larger than " + MAX_MEMO + " entries");
        memo.put(key, peek());
    }

    /**
     * {@code o} if Python could hash it as a dict key or set member: a scalar, or a tuple of
     * them within a node and depth budget (a shared sub-tuple counts every time it is reached,
     * so a small pickle cannot make hashing exponential). Lists, dicts and sets are unhashable
     * in Python and refused here, which also rules out a container that holds itself.
     */
    private Object hashable(Object o, String what) {
        int[] budget = {MAX_KEY_NODES};
        checkHashable(o, what, 0, budget);
        return o;
    }

    private void checkHashable(Object o, String what, int depth, int[] budget) {
        if (--budget[0] < 0) throw fail(what + " has more than " + MAX_KEY_NODES + " parts");
        if (depth > MAX_KEY_DEPTH) throw fail(what + " is nested deeper than " + MAX_KEY_DEPTH);
        if (o == null || o instanceof String || o instanceof Long || o instanceof java.math.BigInteger || o instanceof Double
                || o instanceof Boolean || o instanceof Global || o instanceof byte[]) return;
        if (o instanceof List<?> l && !(o instanceof ArrayList<?>)) { // a tuple
            for (Object e : l) checkHashable(e, what, depth + 1, budget);
            return;
        }
        throw fail("unhashable " + describe(o) + " used as a " + what);
    }

    private List<Object> hashableAll(java.util.Collection<?> items) {
        List<Object> out = new ArrayList<>(items.size());
        for (Object o : items) out.add(hashable(o, "set member"));
        return out;
    }

    private Object pop() {
        if (stack.isEmpty() || stack.getLast() == MARK) throw fail("pickle stack underflow");
        return stack.removeLast();
    }

    private Object peek() {
        if (stack.isEmpty() || stack.getLast() == MARK) throw fail("pickle stack underflow");
        return stack.getLast();
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) throw fail("pickle MARK missing");
        int m = marks.removeLast();
        List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private Object memoGet(long key) {
        if (!memo.containsKey(key)) throw fail("pickle memo key " + key + " was never stored");
        return memo.get(key);
    }

    private static String describe(Object o) {
        return o == null ? "None" : o.getClass().getSimpleName();
    }

    private CheckpointException fail(String what) {
        return new CheckpointException(source + ": " + what);
    }
}
