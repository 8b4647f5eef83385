// The few libtorch settings tch 0.24 does not expose. Each function returns 0 on
// success, or 1 after writing a NUL-terminated message into `err`.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <cstring>
#include <exception>

namespace {
int fail(const std::exception& e, char* err, size_t n) {
  if (n > 0) {
    std::strncpy(err, e.what(), n - 1);
    err[n - 1] = '\0';
  }
  return 1;
}
}  // namespace

extern "C" {

// TF32 for float32 matmuls and convolutions on CUDA ("high" precision).
int ladder_set_tf32(int enabled, char* err, size_t n) {
  try {
    at::globalContext().setFloat32MatmulPrecision(enabled ? "high" : "highest");
    at::globalContext().setAllowTF32CuDNN(enabled != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, n);
  }
}

// Enters a bf16 autocast region on CUDA.
int ladder_autocast_cuda_bf16_enter(char* err, size_t n) {
  try {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, n);
  }
}

// Leaves the region; the cast-weight cache is dropped so updated weights are recast.
int ladder_autocast_cuda_exit(char* err, size_t n) {
  try {
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, n);
  }
}
}
