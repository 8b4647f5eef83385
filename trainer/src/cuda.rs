//! The CUDA features tch does not expose, through `csrc/torch_shim.cpp`: device memory, fused
//! AdamW (`_fused_adamw_`, one multi-tensor kernel), and CUDA graphs of whole training steps
//! (capture on a side stream into a private memory pool, then replay). A build without CUDA
//! answers [`built`] false and every call with an error; the trainer then runs eagerly.
use std::ffi::{c_char, c_int, c_void};

use tch::{Device, Tensor};

use crate::device::shim;
use crate::error::{Result, TrainerError};

unsafe extern "C" {
    fn ladder_cuda_built() -> c_int;
    fn ladder_cuda_mem_info(index: c_int, free: *mut u64, total: *mut u64, err: *mut c_char, n: usize) -> c_int;
    fn ladder_autocast_cache(enabled: c_int, err: *mut c_char, n: usize) -> c_int;
    fn ladder_fused_adamw(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        count: usize,
        step: *const c_void,
        lr: *const c_void,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        err: *mut c_char,
        n: usize,
    ) -> c_int;
    fn ladder_graph_new(device: c_int, out: *mut *mut c_void, err: *mut c_char, n: usize) -> c_int;
    fn ladder_graph_free(h: *mut c_void);
    fn ladder_graph_side_enter(h: *mut c_void, err: *mut c_char, n: usize) -> c_int;
    fn ladder_graph_side_exit(h: *mut c_void, err: *mut c_char, n: usize) -> c_int;
    fn ladder_graph_capture_begin(h: *mut c_void, err: *mut c_char, n: usize) -> c_int;
    fn ladder_graph_capture_end(h: *mut c_void, err: *mut c_char, n: usize) -> c_int;
    fn ladder_graph_replay(h: *mut c_void, err: *mut c_char, n: usize) -> c_int;
}

/// Whether this build has the CUDA part of the shim.
pub fn built() -> bool {
    // SAFETY: a constant query.
    unsafe { ladder_cuda_built() != 0 }
}

/// (free, total) bytes of CUDA device `index`.
pub fn mem_info(index: usize) -> Result<(u64, u64)> {
    let (mut free, mut total) = (0u64, 0u64);
    let i = c_int::try_from(index).map_err(|_| TrainerError::DeviceUnavailable(format!("cuda:{index}")))?;
    // SAFETY: plain out-parameters.
    shim(|e, n| unsafe { ladder_cuda_mem_info(i, &mut free, &mut total, e, n) })?;
    Ok((free, total))
}

/// Turns autocast's cast-weight cache on or off (off while a step is captured).
pub fn autocast_cache(enabled: bool) -> Result<()> {
    // SAFETY: a global setting.
    shim(|e, n| unsafe { ladder_autocast_cache(c_int::from(enabled), e, n) })
}

fn ptrs(ts: &[Tensor]) -> Vec<*const c_void> {
    ts.iter().map(|t| t.as_ptr().cast::<c_void>()).collect()
}

/// The AdamW settings of one fused call.
#[derive(Debug, Clone, Copy)]
pub struct AdamWArgs {
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// One AdamW update of `params` in one kernel; `step` (float32, incremented for this update) and
/// `lr` (float32) are device scalars, so a captured update reads them afresh on every replay.
pub fn fused_adamw(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: &Tensor,
    lr: &Tensor,
    a: AdamWArgs,
) -> Result<()> {
    let n = params.len();
    if grads.len() != n || exp_avgs.len() != n || exp_avg_sqs.len() != n {
        return Err(TrainerError::invalid("fused AdamW", "parameter, gradient and state lists differ in length"));
    }
    if n == 0 {
        return Ok(());
    }
    let (p, g, m, v) = (ptrs(params), ptrs(grads), ptrs(exp_avgs), ptrs(exp_avg_sqs));
    // SAFETY: every pointer is a live tensor handle for the duration of the call.
    shim(|e, len| unsafe {
        ladder_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            n,
            step.as_ptr().cast(),
            lr.as_ptr().cast(),
            a.beta1,
            a.beta2,
            a.weight_decay,
            a.eps,
            e,
            len,
        )
    })
}

/// A CUDA graph of one training step, captured and replayed on a side stream of its own.
pub struct Graph {
    h: *mut c_void,
    captured: bool,
}

impl Graph {
    pub fn new(device: Device) -> Result<Self> {
        let Device::Cuda(i) = device else {
            return Err(TrainerError::invalid("cuda graph", "graphs need a CUDA device"));
        };
        let i = c_int::try_from(i).map_err(|_| TrainerError::DeviceUnavailable(format!("cuda:{i}")))?;
        let mut h = std::ptr::null_mut();
        // SAFETY: out-parameter; the handle is freed in Drop.
        shim(|e, n| unsafe { ladder_graph_new(i, &mut h, e, n) })?;
        Ok(Self { h, captured: false })
    }

    /// Runs `f` on the side stream (the warm-up steps before a capture).
    pub fn on_side_stream<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        // SAFETY: `h` is live.
        shim(|e, n| unsafe { ladder_graph_side_enter(self.h, e, n) })?;
        let out = f();
        // SAFETY: `h` is live, and entered the side stream above.
        shim(|e, n| unsafe { ladder_graph_side_exit(self.h, e, n) })?;
        out
    }

    /// Captures `f` (which launches, but does not run, one step's kernels). On any failure the
    /// capture is abandoned and the error returned; the graph is then unusable.
    pub fn capture<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        autocast_cache(false)?;
        // SAFETY: `h` is live.
        if let Err(e) = shim(|e, n| unsafe { ladder_graph_capture_begin(self.h, e, n) }) {
            autocast_cache(true)?;
            return Err(e);
        }
        let out = f();
        // SAFETY: `h` is live, and began a capture above.
        let ended = shim(|e, n| unsafe { ladder_graph_capture_end(self.h, e, n) });
        autocast_cache(true)?;
        let out = out?;
        ended?;
        self.captured = true;
        Ok(out)
    }

    /// Runs the captured step once more.
    pub fn replay(&mut self) -> Result<()> {
        if !self.captured {
            return Err(TrainerError::invalid("cuda graph", "replay before a successful capture"));
        }
        // SAFETY: `h` is live and captured.
        shim(|e, n| unsafe { ladder_graph_replay(self.h, e, n) })
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: `h` came from ladder_graph_new and is freed once.
        unsafe { ladder_graph_free(self.h) }
    }
}
