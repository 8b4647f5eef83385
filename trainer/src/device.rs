//! Device selection, and the precision settings tch does not expose (through `csrc/torch_shim.cpp`):
//! bf16 autocast and TF32 on CUDA, plain fp32 on CPU.
use std::ffi::{CStr, c_char, c_int};

use tch::{Cuda, Device};

use crate::error::{Result, TrainerError};

unsafe extern "C" {
    fn ladder_set_tf32(enabled: c_int, err: *mut c_char, n: usize) -> c_int;
    fn ladder_autocast_cuda_bf16_enter(err: *mut c_char, n: usize) -> c_int;
    fn ladder_autocast_cuda_exit(err: *mut c_char, n: usize) -> c_int;
}

/// Calls a shim function that writes a NUL-terminated message into `err` and returns non-zero on
/// failure.
pub(crate) fn shim(call: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut buf = [0 as c_char; 512];
    if call(buf.as_mut_ptr(), buf.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within `buf` on failure.
    let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
    Err(TrainerError::Torch(tch::TchError::Torch(msg)))
}

pub use ladder_core::job::DeviceRequest;

/// Resolves a request to a libtorch device, refusing CUDA where none is usable. Any GPU is the
/// first: a worker names the GPU of its slot, so only a trainer run by hand picks.
pub fn select_device(d: DeviceRequest) -> Result<Device> {
    let gpu = |i: u32| {
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        if Cuda::is_available() && i < Cuda::device_count() as usize {
            Ok(Device::Cuda(i))
        } else {
            Err(TrainerError::DeviceUnavailable(d.to_string()))
        }
    };
    match d {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto => Ok(Device::cuda_if_available()),
        DeviceRequest::AnyGpu => gpu(0),
        DeviceRequest::Gpu(i) => gpu(i),
    }
}

/// Sets TF32 matmuls on CUDA; CPU stays strict fp32.
pub fn configure_precision(device: Device) -> Result<()> {
    let tf32 = device.is_cuda();
    // SAFETY: plain C call into libtorch's global context.
    shim(|e, n| unsafe { ladder_set_tf32(c_int::from(tf32), e, n) })
}

/// Runs `f` under bf16 autocast when `device` is CUDA, else as is.
pub fn autocast<T>(device: Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !device.is_cuda() {
        return f();
    }
    // SAFETY: enter/exit are paired below on every path.
    shim(|e, n| unsafe { ladder_autocast_cuda_bf16_enter(e, n) })?;
    let out = f();
    // SAFETY: leaves the region entered above.
    shim(|e, n| unsafe { ladder_autocast_cuda_exit(e, n) })?;
    out
}
