// Elementwise kernels. extern "C" keeps the names stable for cuModuleGetFunction.

// y[i] = a[i] + b[i]
extern "C" __global__ void add_f32(const float* __restrict__ a, const float* __restrict__ b,
                                   float* __restrict__ y, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}
