//! The torch.export backend: AOTInductor packages (`.pt2`, from
//! `torch._inductor.aoti_compile_and_package`) run by libtorch's own loader through
//! the C++ shim (src/shim/aoti.cpp). No new native dependency: `libtorch_cpu.so`
//! exports the loader.
//!
//! A package is compiled code for one device and one CPU instruction set. Both are
//! read from its metadata (`AOTI_DEVICE_KEY`, `AOTI_CPU_ISA`, `AOTI_MACHINE`) and
//! checked before anything is loaded, so a package this machine cannot run is exit 2
//! with the reason, never an illegal instruction. An embedded spec is the metadata key
//! `rotbench.json` (written with `inductor_configs={"aot_inductor.metadata": {...}}`).

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use tch::{Device, Tensor};

mod shim {
    use std::ffi::{c_char, c_int};
    #[repr(C)]
    pub struct RbAoti {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn rb_aoti_metadata(path: *const c_char, err: *mut *mut c_char) -> *mut c_char;
        pub fn rb_aoti_load(
            path: *const c_char,
            device_index: c_int,
            err: *mut *mut c_char,
        ) -> *mut RbAoti;
        pub fn rb_aoti_run(
            m: *mut RbAoti,
            input: *const torch_sys::C_tensor,
            err: *mut *mut c_char,
        ) -> *mut torch_sys::C_tensor;
        pub fn rb_aoti_free(m: *mut RbAoti);
        pub fn rb_free_message(s: *mut c_char);
    }
}

/// The metadata key of an embedded spec.
pub const METADATA_KEY: &str = "rotbench.json";

fn take(s: *mut c_char) -> String {
    if s.is_null() {
        return "unknown libtorch error".into();
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd string, freed here once.
    let out = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    unsafe { shim::rb_free_message(s) };
    out
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("{}: the path holds a NUL byte", path.display()))
}

/// A package's metadata, read without loading its code.
pub fn metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let c = c_path(path)?;
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid C string; err is an out-pointer.
    let text = unsafe { shim::rb_aoti_metadata(c.as_ptr(), &mut err) };
    if text.is_null() {
        bail!(
            "{}: not a readable AOTInductor package ({}); the file is corrupt or truncated, or not made by torch._inductor.aoti_compile_and_package: export it again",
            path.display(),
            first_line(&take(err))
        );
    }
    Ok(take(text)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect())
}

/// Undo the shim's escaping of `\\`, `\t` and `\n`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The CPU's vector extensions, as the ISA check names them.
pub fn cpu_features() -> Vec<&'static str> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
            ("avx512dq", std::arch::is_x86_feature_detected!("avx512dq")),
        ] {
            if on {
                out.push(name);
            }
        }
    }
    out
}

/// Why this machine cannot run code compiled for `isa` on `machine`, or None.
/// `isa` is inductor's name (`AVX2`, `AVX512`, `NEON`, `SVE256`, ...; empty for a
/// package compiled without vector code), `arch` this machine's, `features` its CPU's.
pub fn cannot_run(machine: &str, isa: &str, arch: &str, features: &[&str]) -> Option<String> {
    if !machine.is_empty() && machine != arch {
        return Some(format!(
            "it was compiled for {machine} (AOTI_MACHINE) and this machine is {arch}"
        ));
    }
    let needs: &[&str] = match isa.to_ascii_uppercase().as_str() {
        "" | "DEFAULT" | "NONE" => &[],
        "AVX2" => &["avx2", "fma"],
        "AVX512" | "AVX512_BF16" | "AVX512_FP16" | "AMX" => &["avx512f", "avx512bw", "avx512vl", "avx512dq"],
        other if arch == "x86_64" => {
            return Some(format!(
                "it was compiled for the {other} instruction set (AOTI_CPU_ISA), which rotbench does not know how to check on {arch}"
            ))
        }
        _ => &[],
    };
    let missing: Vec<&str> = needs
        .iter()
        .copied()
        .filter(|n| !features.contains(n))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "it was compiled for {isa} (AOTI_CPU_ISA) and this CPU lacks {} (it has: {})",
            missing.join(", "),
            if features.is_empty() {
                "none of avx2, fma, avx512".to_string()
            } else {
                features.join(" ")
            }
        ))
    }
}

/// An empty library whose soname is libtorch.so (built by build.rs).
static TORCH_STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libtorch_stub.so"));

/// Make `libtorch.so` resolvable for a package's code: the real one beside
/// libtorch_cpu.so when it loads (a full torch), else the stand-in, loaded from an
/// anonymous memory file. The package uses no symbol of libtorch.so's own: it is a
/// wrapper library, and the slim CPU set's copy cannot load without libtorch_cuda.so.
fn provide_libtorch_so() -> std::result::Result<(), String> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        if crate::libtorch::preload("libtorch.so").is_ok() {
            return Ok(());
        }
        let name = CString::new("rotbench-libtorch-stub").unwrap();
        // SAFETY: memfd_create with a valid name; the fd stays open for the process.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        if fd < 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh memfd; the buffer is valid for its length.
        let n = unsafe { libc::write(fd, TORCH_STUB.as_ptr().cast(), TORCH_STUB.len()) };
        if n != TORCH_STUB.len() as isize {
            return Err("could not write the stand-in".into());
        }
        let path = CString::new(format!("/proc/self/fd/{fd}")).unwrap();
        // SAFETY: a valid path to the ELF just written.
        let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            // SAFETY: dlerror returns null or a message owned by libc.
            let e = unsafe { libc::dlerror() };
            return Err(if e.is_null() {
                "dlopen failed".into()
            } else {
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            });
        }
        Ok(())
    })
    .clone()
}

/// A loaded package.
pub struct Pt2Net {
    ptr: *mut shim::RbAoti,
    /// The package's metadata (device, machine, ISA, embedded spec).
    pub metadata: BTreeMap<String, String>,
}

impl Pt2Net {
    /// Check the package's device, machine and instruction set against `device`
    /// and this CPU, then load it. Returns it with its embedded spec's text.
    pub fn load(path: &Path, device: Device) -> Result<(Pt2Net, Option<String>)> {
        let meta = metadata(path)?;
        let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or("");
        let compiled_for = get("AOTI_DEVICE_KEY");
        let wanted = match device {
            Device::Cuda(_) => "cuda",
            _ => "cpu",
        };
        if !compiled_for.is_empty() && compiled_for != wanted {
            bail!(
                "{}: this package was compiled for {compiled_for} (AOTI_DEVICE_KEY) and cannot run on {wanted}; run it with --device {compiled_for}, or compile it again with the model and example input on the {wanted} (torch._inductor.aoti_compile_and_package)",
                path.display()
            );
        }
        if wanted == "cpu" {
            if let Some(why) = cannot_run(
                get("AOTI_MACHINE"),
                get("AOTI_CPU_ISA"),
                std::env::consts::ARCH,
                &cpu_features(),
            ) {
                bail!(
                    "{}: this CPU cannot run the package: {why}; compile it for an older instruction set, e.g. inductor_configs={{\"cpp.simdlen\": 256}} for AVX2 (models/export.py does)",
                    path.display()
                );
            }
        }
        // The package's code lists libtorch.so as NEEDED, which the binary does not link.
        provide_libtorch_so().map_err(|e| {
            anyhow!(
                "{}: AOTInductor packages need libtorch.so, and neither the one beside libtorch_cpu.so nor rotbench's stand-in would load ({e})",
                path.display()
            )
        })?;
        let index = match device {
            Device::Cuda(i) => i as c_int,
            _ => -1,
        };
        let c = c_path(path)?;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid C string; err is an out-pointer.
        let ptr = unsafe { shim::rb_aoti_load(c.as_ptr(), index, &mut err) };
        if ptr.is_null() {
            bail!(
                "{}: libtorch could not load the AOTInductor package: {}",
                path.display(),
                first_line(&take(err))
            );
        }
        let spec = meta.get(METADATA_KEY).cloned();
        Ok((
            Pt2Net {
                ptr,
                metadata: meta,
            },
            spec,
        ))
    }

    /// The first output for a normalised float32 NCHW batch on the package's device.
    pub fn forward(&self, x: &Tensor) -> std::result::Result<Tensor, String> {
        let x = x.contiguous();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: self.ptr is live; x.as_ptr() is a valid torch::Tensor* for the call.
        let out = unsafe { shim::rb_aoti_run(self.ptr, x.as_ptr(), &mut err) };
        if out.is_null() {
            return Err(first_line(&take(err)));
        }
        // SAFETY: the shim hands over a new heap torch::Tensor*, which tch now owns.
        Ok(unsafe { Tensor::from_ptr(out) })
    }
}

impl Drop for Pt2Net {
    fn drop(&mut self) {
        // SAFETY: allocated by rb_aoti_load, freed once.
        unsafe { shim::rb_aoti_free(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_for_an_instruction_set_the_cpu_lacks_is_refused_with_the_missing_features() {
        let avx2_only = ["avx2", "fma"];
        assert_eq!(cannot_run("x86_64", "AVX2", "x86_64", &avx2_only), None);
        let why = cannot_run("x86_64", "AVX512", "x86_64", &avx2_only).unwrap();
        assert!(why.contains("compiled for AVX512"), "{why}");
        assert!(
            why.contains("lacks avx512f, avx512bw, avx512vl, avx512dq"),
            "{why}"
        );
        assert!(cannot_run("x86_64", "AVX2", "x86_64", &[])
            .unwrap()
            .contains("lacks avx2, fma"));
        let all = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"];
        assert_eq!(cannot_run("x86_64", "AVX512", "x86_64", &all), None);
        assert_eq!(cannot_run("x86_64", "", "x86_64", &[]), None);
    }

    #[test]
    fn escaped_metadata_values_come_back_whole() {
        assert_eq!(
            unescape(r#"{\n  "a": 1\tx\\y\n}"#),
            "{\n  \"a\": 1\tx\\y\n}"
        );
    }

    #[test]
    fn a_package_for_another_machine_is_refused() {
        let why = cannot_run("aarch64", "NEON", "x86_64", &["avx2"]).unwrap();
        assert!(why.contains("compiled for aarch64"), "{why}");
    }
}
