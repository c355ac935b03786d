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

use crate::model::{first_line, shim_message};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CString};
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
    }
}

/// The metadata key of an embedded spec.
pub const METADATA_KEY: &str = "rotbench.json";

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
            first_line(&shim_message(err))
        );
    }
    Ok(shim_message(text)
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

/// The CPU's feature flags as /proc/cpuinfo lists them (`flags` on x86, `Features`
/// on Arm): `avx2`, `avx512f`, `avx512_vnni`, `amx_tile`, `asimd`, `sve`, ...
pub fn cpu_features() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The CPU flags an instruction-set name in a package's `AOTI_CPU_ISA` needs
/// (inductor's names: `AVX2`, `AVX512`, `AVX512_VNNI`, `AMX_TILE`, `NEON`, ...).
fn flags_for(isa: &str) -> Option<&'static [&'static str]> {
    Some(match isa {
        "AVX2" => &["avx2", "fma"],
        "AVX512" => &["avx512f", "avx512bw", "avx512vl", "avx512dq"],
        "AVX512_VNNI" => &["avx512_vnni"],
        "AVX512_BF16" => &["avx512_bf16"],
        "AVX512_FP16" => &["avx512_fp16"],
        "AMX_TILE" => &["amx_tile"],
        "AMX_BF16" => &["amx_bf16"],
        "AMX_FP16" => &["amx_fp16"],
        "NEON" | "ASIMD" => &["asimd"],
        "SVE" | "SVE256" => &["sve"],
        "DEFAULT" | "NONE" => &[],
        _ => return None,
    })
}

/// Why this machine cannot run code compiled on `machine` for the instruction sets
/// `isa` (space-separated, as `AOTI_CPU_ISA` lists them; empty for no vector code),
/// or None. `arch` is this machine's, `features` its CPU's flags.
pub fn cannot_run(machine: &str, isa: &str, arch: &str, features: &[&str]) -> Option<String> {
    if !machine.is_empty() && machine != arch {
        return Some(format!(
            "it was compiled for {machine} (AOTI_MACHINE) and this machine is {arch}"
        ));
    }
    let mut missing: Vec<&str> = Vec::new();
    for token in isa.split_whitespace() {
        let Some(needs) = flags_for(&token.to_ascii_uppercase()) else {
            return Some(format!(
                "it was compiled for the {token} instruction set (AOTI_CPU_ISA: {isa}), which rotbench cannot check this CPU for (set ROTBENCH_SKIP_ISA_CHECK=1 to load it anyway)"
            ));
        };
        for n in needs {
            if !features.contains(n) && !missing.contains(n) {
                missing.push(n);
            }
        }
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "it was compiled for {isa} (AOTI_CPU_ISA) and this CPU lacks {}",
            missing.join(", ")
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
        crate::libtorch::open_global(Path::new(&format!("/proc/self/fd/{fd}")))
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
        let skip_isa = std::env::var_os("ROTBENCH_SKIP_ISA_CHECK").is_some_and(|v| v == "1");
        if wanted == "cpu" && !skip_isa {
            let features = cpu_features();
            let features: Vec<&str> = features.iter().map(String::as_str).collect();
            if let Some(why) = cannot_run(
                get("AOTI_MACHINE"),
                get("AOTI_CPU_ISA"),
                std::env::consts::ARCH,
                &features,
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
                first_line(&shim_message(err))
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
            return Err(first_line(&shim_message(err)));
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
    fn a_package_for_an_instruction_set_the_cpu_lacks_is_refused_with_the_missing_flags() {
        let avx2_only = ["avx2", "fma", "sse4_2"];
        assert_eq!(cannot_run("x86_64", "AVX2", "x86_64", &avx2_only), None);
        let why = cannot_run("x86_64", "AVX512 AVX512_VNNI", "x86_64", &avx2_only).unwrap();
        assert!(why.contains("compiled for AVX512 AVX512_VNNI"), "{why}");
        assert!(
            why.contains("lacks avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni"),
            "{why}"
        );
        assert!(cannot_run("x86_64", "AVX2", "x86_64", &[])
            .unwrap()
            .contains("lacks avx2, fma"));
        let server = [
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512_vnni",
        ];
        assert_eq!(
            cannot_run("x86_64", "AVX512 AVX512_VNNI", "x86_64", &server),
            None
        );
        let amx = cannot_run("x86_64", "AVX512 AVX512_VNNI AMX_TILE", "x86_64", &server).unwrap();
        assert!(amx.ends_with("lacks amx_tile"), "{amx}");
        assert_eq!(cannot_run("x86_64", "", "x86_64", &[]), None);
        let unknown = cannot_run("x86_64", "AVX10_2", "x86_64", &server).unwrap();
        assert!(unknown.contains("ROTBENCH_SKIP_ISA_CHECK"), "{unknown}");
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
