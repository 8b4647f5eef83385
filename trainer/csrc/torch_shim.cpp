// The few libtorch settings tch 0.24 does not expose. Each function returns 0 on
// success, or 1 after writing a NUL-terminated message into `err`.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <cstring>
#include <exception>

namespace {
int fail_msg(const char* what, char* err, size_t n) {
  if (n > 0) {
    std::strncpy(err, what, n - 1);
    err[n - 1] = '\0';
  }
  return 1;
}

int fail(const std::exception& e, char* err, size_t n) { return fail_msg(e.what(), err, n); }

// Runs `body`: 0 when it returns, 1 with the exception's message in `err` when it throws.
template <class F>
int guarded(char* err, size_t n, F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, n);
  }
}

constexpr const char* kNoCuda = "this ladder-train was built without CUDA";
}  // namespace

extern "C" {

// TF32 for float32 matmuls and convolutions on CUDA ("high" precision).
int ladder_set_tf32(int enabled, char* err, size_t n) {
  return guarded(err, n, [&] {
    at::globalContext().setFloat32MatmulPrecision(enabled ? "high" : "highest");
    at::globalContext().setAllowTF32CuDNN(enabled != 0);
  });
}

// Enters a bf16 autocast region on CUDA.
int ladder_autocast_cuda_bf16_enter(char* err, size_t n) {
  return guarded(err, n, [&] {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
  });
}

// Leaves the region; the cast-weight cache is dropped so updated weights are recast.
int ladder_autocast_cuda_exit(char* err, size_t n) {
  return guarded(err, n, [&] {
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(at::kCUDA, false);
  });
}
}

// ---------------------------------------------------------------------------------------------
// CUDA: device memory, fused AdamW, and CUDA graphs of whole training steps. Built with
// LADDER_CUDA where libtorch has its CUDA part and the CUDA runtime headers are present; without
// it every function answers that this build has no CUDA, and the trainer runs eagerly.
#include <ATen/Functions.h>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

extern "C" {

// autocast's cast-weight cache: off while a step is captured (its casts must be part of the graph).
int ladder_autocast_cache(int enabled, char* err, size_t n) {
  return guarded(err, n, [&] {
    at::autocast::set_autocast_cache_enabled(enabled != 0);
  });
}

// AdamW over `count` parameters in one multi-tensor kernel (PyTorch's fused=True). `step` is the
// shared float32 step count on the device, already incremented for this update; `lr` a float32
// device scalar, so a captured update reads the learning rate of each replay.
int ladder_fused_adamw(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                       size_t count, const at::Tensor* step, const at::Tensor* lr, double beta1, double beta2,
                       double weight_decay, double eps, char* err, size_t n) {
  return guarded(err, n, [&] {
    std::vector<at::Tensor> p, g, m, v, s;
    p.reserve(count), g.reserve(count), m.reserve(count), v.reserve(count), s.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      p.push_back(*params[i]);
      g.push_back(*grads[i]);
      m.push_back(*exp_avgs[i]);
      v.push_back(*exp_avg_sqs[i]);
      s.push_back(*step);
    }
    at::_fused_adamw_(p, g, m, v, {}, s, *lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                      /*maximize=*/false, std::nullopt, std::nullopt);
  });
}
}

#ifdef LADDER_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

namespace {
// A captured step: its graph and the side stream it is captured and replayed on.
struct LadderGraph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> prev;
  explicit LadderGraph(c10::DeviceIndex device) : side(c10::cuda::getStreamFromPool(false, device)) {}

  // The side stream becomes current once it has waited for the current one.
  void enter() {
    prev = c10::cuda::getCurrentCUDAStream(side.device_index());
    c10::cuda::CUDAEvent ev;
    ev.record(*prev);
    ev.block(side);
    c10::cuda::setCurrentCUDAStream(side);
  }

  // The previous stream becomes current again, waiting for the side stream's work.
  void exit() {
    if (!prev) return;
    c10::cuda::CUDAEvent ev;
    ev.record(side);
    ev.block(*prev);
    c10::cuda::setCurrentCUDAStream(*prev);
    prev.reset();
  }
};
}  // namespace

extern "C" {

// 1 when this build can capture CUDA graphs and query CUDA memory.
int ladder_cuda_built() { return 1; }

// Free and total bytes of CUDA device `index`.
int ladder_cuda_mem_info(int index, uint64_t* free_bytes, uint64_t* total_bytes, char* err, size_t n) {
  return guarded(err, n, [&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
    size_t f = 0, t = 0;
    C10_CUDA_CHECK(cudaMemGetInfo(&f, &t));
    *free_bytes = f;
    *total_bytes = t;
  });
}

// A new graph handle for CUDA device `device`.
int ladder_graph_new(int device, void** out, char* err, size_t n) {
  return guarded(err, n, [&] {
    *out = new LadderGraph(static_cast<c10::DeviceIndex>(device));
  });
}

void ladder_graph_free(void* h) { delete static_cast<LadderGraph*>(h); }

// Runs what follows on the graph's side stream (warm-up steps before a capture).
int ladder_graph_side_enter(void* h, char* err, size_t n) {
  return guarded(err, n, [&] {
    static_cast<LadderGraph*>(h)->enter();
  });
}

int ladder_graph_side_exit(void* h, char* err, size_t n) {
  return guarded(err, n, [&] {
    static_cast<LadderGraph*>(h)->exit();
  });
}

// Starts capturing on the side stream, into the graph's private memory pool.
int ladder_graph_capture_begin(void* h, char* err, size_t n) {
  auto* g = static_cast<LadderGraph*>(h);
  try {
    g->enter();
    g->graph.capture_begin();
    return 0;
  } catch (const std::exception& e) {
    g->exit();
    return fail(e, err, n);
  }
}

// Ends the capture; on failure the stream is back to normal and the graph unusable.
int ladder_graph_capture_end(void* h, char* err, size_t n) {
  auto* g = static_cast<LadderGraph*>(h);
  try {
    g->graph.capture_end();
    g->exit();
    return 0;
  } catch (const std::exception& e) {
    g->exit();
    return fail(e, err, n);
  }
}

// Replays the captured step on the side stream, ordered after the current stream's work.
int ladder_graph_replay(void* h, char* err, size_t n) {
  auto* g = static_cast<LadderGraph*>(h);
  try {
    g->enter();
    g->graph.replay();
    g->exit();
    return 0;
  } catch (const std::exception& e) {
    g->exit();
    return fail(e, err, n);
  }
}
}

#else

extern "C" {
// Without CUDA, every CUDA entry point answers that this build has none.
#define LADDER_NO_CUDA(name, ...) \
  int name(__VA_ARGS__, char* err, size_t n) { return fail_msg(kNoCuda, err, n); }

int ladder_cuda_built() { return 0; }
LADDER_NO_CUDA(ladder_cuda_mem_info, int, uint64_t*, uint64_t*)
LADDER_NO_CUDA(ladder_graph_new, int, void**)
void ladder_graph_free(void*) {}
LADDER_NO_CUDA(ladder_graph_side_enter, void*)
LADDER_NO_CUDA(ladder_graph_side_exit, void*)
LADDER_NO_CUDA(ladder_graph_capture_begin, void*)
LADDER_NO_CUDA(ladder_graph_capture_end, void*)
LADDER_NO_CUDA(ladder_graph_replay, void*)
}

#endif
