package io.refldmseg.engine.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.util.Optional;

/**
 * Whether CUDA can be used here: a driver, a device, and the kernels fatbin built by the
 * {@code kernels} module. {@link #probe()} says which one is missing.
 */
public final class Cuda {
    public static final String FATBIN_RESOURCE = "/io/refldmseg/kernels/refldmseg.fatbin";

    private Cuda() {
    }

    /** A usable device: the driver (initialised), the device ordinal and name, and the fatbin. */
    public record Device(CudaDriver driver, int device, String name, byte[] fatbin) {
    }

    /** The device, or the reason there is none, in words. */
    public record Probe(Optional<Device> device, String reason) {
    }

    public static Probe probe() {
        byte[] fatbin = fatbin();
        if (fatbin == null) return new Probe(Optional.empty(), "no kernels fatbin in this build (nvcc was missing when it was built)");
        StringBuilder why = new StringBuilder();
        Optional<CudaDriver> d = CudaDriver.load(why);
        if (d.isEmpty()) return new Probe(Optional.empty(), why.toString());
        CudaDriver driver = d.get();
        try {
            driver.init();
            if (driver.deviceCount() == 0) return new Probe(Optional.empty(), "the CUDA driver sees no device");
            int dev = driver.device(0);
            return new Probe(Optional.of(new Device(driver, dev, driver.deviceName(dev), fatbin)), "");
        } catch (CudaException e) {
            return new Probe(Optional.empty(), e.getMessage());
        }
    }

    static byte[] fatbin() {
        try (InputStream in = Cuda.class.getResourceAsStream(FATBIN_RESOURCE)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }
}
