package io.refldmseg.model;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Finding attention layers by name: an exact name, a glob ({@code *} any run of characters,
 * {@code ?} one), or a predicate. A name or glob that matches nothing is an error that lists
 * the nearest names, so a typo never silently sets nothing.
 */
public final class AttentionLayers {
    private AttentionLayers() {
    }

    /** The layers whose name matches {@code nameOrGlob}; an IllegalArgumentException when none does. */
    public static List<Attention> select(List<Attention> layers, String nameOrGlob) {
        Predicate<String> match = matcher(nameOrGlob);
        List<Attention> out = layers.stream().filter(a -> match.test(a.name())).toList();
        if (out.isEmpty()) {
            List<String> near = layers.stream().map(Attention::name)
                    .sorted(Comparator.comparingInt((String n) -> distance(n, nameOrGlob.replace("*", "").replace("?", ""))))
                    .limit(5).toList();
            throw new IllegalArgumentException("no attention layer matches '" + nameOrGlob + "' (" + layers.size()
                    + " layers; nearest: " + String.join(", ", near) + ")");
        }
        return out;
    }

    public static List<Attention> select(List<Attention> layers, Predicate<Attention> which) {
        return layers.stream().filter(which).toList();
    }

    /** Sets {@code processor} on every layer matching {@code nameOrGlob}; returns them. */
    public static List<Attention> setProcessor(List<Attention> layers, String nameOrGlob, AttentionProcessor processor) {
        List<Attention> chosen = select(layers, nameOrGlob);
        chosen.forEach(a -> a.setProcessor(processor));
        return chosen;
    }

    public static List<Attention> setProcessor(List<Attention> layers, Predicate<Attention> which, AttentionProcessor processor) {
        List<Attention> chosen = select(layers, which);
        chosen.forEach(a -> a.setProcessor(processor));
        return chosen;
    }

    /** A glob as a name test: {@code *} and {@code ?} are wildcards, everything else literal. */
    public static Predicate<String> matcher(String glob) {
        StringBuilder re = new StringBuilder();
        for (char ch : glob.toCharArray())
            re.append(ch == '*' ? ".*" : ch == '?' ? "." : Pattern.quote(String.valueOf(ch)));
        Pattern p = Pattern.compile(re.toString());
        return s -> p.matcher(s).matches();
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++)
                cur[j] = Math.min(Math.min(cur[j - 1], prev[j]) + 1, prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    static List<Attention> concat(List<List<Attention>> parts) {
        List<Attention> out = new ArrayList<>();
        parts.forEach(out::addAll);
        return List.copyOf(out);
    }
}
