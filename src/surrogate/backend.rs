//! The burn device chosen once at the command line. Devices are always constructed explicitly:
//! `Device::default()` would silently pick any GPU-like device, a software Vulkan driver included.

use crate::error::{Result, SurgeError};
use burn::tensor::Device;

/// `flex` (default CPU backend), `ndarray` (cargo feature `ndarray`), `wgpu` (cargo feature `wgpu`).
pub fn device(name: &str) -> Result<Device> {
    #[cfg(feature = "ndarray")]
    if name == "ndarray" {
        return Ok(Device::ndarray());
    }
    #[cfg(feature = "wgpu")]
    if name == "wgpu" {
        return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    }
    match name {
        "flex" => Ok(Device::flex()),
        "ndarray" | "wgpu" | "cuda" => Err(SurgeError::spec(
            "--backend",
            format!("this surge was built without the `{name}` backend"),
            format!(
                "rebuild with `cargo build --release --features {name}`, or use --backend flex"
            ),
        )),
        other => Err(SurgeError::spec(
            "--backend",
            format!("unknown backend `{other}`"),
            "use flex, ndarray or wgpu",
        )),
    }
}
