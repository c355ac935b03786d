//! Devices: `--device cpu|cuda|cuda:N|auto` parsed into libtorch's [`Device`],
//! and a device's name as results record it.

use anyhow::{anyhow, bail, Result};
use tch::Device;

/// `libtorch_cuda.so` when it sits beside the libtorch in use (see [`crate::libtorch`]).
pub fn parse_device(s: &str) -> Result<Device> {
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let flag = format!("--device {s}");
    match s {
        "auto" => {
            crate::libtorch::load_cuda();
            Ok(Device::cuda_if_available())
        }
        "cuda" | "gpu" => match crate::libtorch::cuda_unavailable(&flag) {
            None => Ok(Device::Cuda(0)),
            Some(why) => bail!("{why}"),
        },
        s if s.starts_with("cuda:") => {
            let i: usize = s[5..]
                .parse()
                .map_err(|_| anyhow!("{flag}: expected cuda:N with N a GPU index"))?;
            if let Some(why) = crate::libtorch::cuda_unavailable(&flag) {
                bail!("{why}");
            }
            if (i as i64) < tch::Cuda::device_count() {
                Ok(Device::Cuda(i))
            } else {
                bail!(
                    "{flag}: libtorch sees {} CUDA device(s), numbered from 0",
                    tch::Cuda::device_count()
                )
            }
        }
        _ => bail!("{flag}: use cpu, cuda, cuda:N or auto"),
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
