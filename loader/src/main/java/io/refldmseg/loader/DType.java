package io.refldmseg.loader;

import java.util.Optional;

/** Element types a checkpoint may store, with their safetensors names and sizes in bytes. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    public final int size;

    DType(int size) {
        this.size = size;
    }

    public boolean isFloating() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    /** The dtype of a safetensors header name such as "F32" or "BF16". */
    public static Optional<DType> fromSafetensors(String name) {
        for (DType d : values()) if (d.name().equals(name)) return Optional.of(d);
        return Optional.empty();
    }

    /** The dtype of a legacy PyTorch typed storage class such as "torch.BFloat16Storage". */
    public static Optional<DType> fromTorchStorage(String qualifiedName) {
        return Optional.ofNullable(switch (qualifiedName) {
            case "torch.DoubleStorage" -> F64;
            case "torch.FloatStorage" -> F32;
            case "torch.HalfStorage" -> F16;
            case "torch.BFloat16Storage" -> BF16;
            case "torch.LongStorage" -> I64;
            case "torch.IntStorage" -> I32;
            case "torch.ShortStorage" -> I16;
            case "torch.CharStorage" -> I8;
            case "torch.ByteStorage" -> U8;
            case "torch.BoolStorage" -> BOOL;
            default -> null;
        });
    }
}
