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

use crate::ffi::{c_path, first_line, shim_message};
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

/// What a package's code records about the instruction sets it may use, beyond
/// `AOTI_CPU_ISA` (which follows `cpp.simdlen` only: a package compiled with
/// `-march=native` on an AVX-512 machine says "AVX2" and holds AVX-512 code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeRecord {
    /// `-march=` values of the compile commands in its sources (`// g++ ...` lines).
    pub march: Vec<String>,
    /// The `-m<isa>` flags in gcc's producer strings in its shared objects, where
    /// `-march=native` is already expanded into the building CPU's flags.
    pub isa_flags: Vec<String>,
}

/// Read a package's [`CodeRecord`] from its zip: every `.cpp` entry's compile
/// commands and every `.so` entry's bytes (entries are stored, not deflated).
pub fn code_record(path: &Path) -> Result<CodeRecord> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path)?).map_err(|e| {
        anyhow!(
            "{}: not a readable AOTInductor package ({e})",
            path.display()
        )
    })?;
    let mut rec = CodeRecord::default();
    for i in 0..zip.len() {
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            continue;
        };
        let (cpp, so) = (name.ends_with(".cpp"), name.ends_with(".so"));
        if !cpp && !so {
            continue;
        }
        let mut bytes = Vec::new();
        if entry.read_to_end(&mut bytes).is_err() {
            continue;
        }
        if cpp {
            for line in String::from_utf8_lossy(&bytes).lines() {
                let l = line.trim_start();
                if l.starts_with("//")
                    && (l.contains("g++") || l.contains("gcc") || l.contains("clang"))
                {
                    for t in l
                        .split_whitespace()
                        .filter_map(|t| t.strip_prefix("-march="))
                    {
                        let t = t.trim_matches(|c| c == '"' || c == '\'' || c == ',');
                        if !rec.march.iter().any(|m| m == t) {
                            rec.march.push(t.to_string());
                        }
                    }
                }
            }
        } else {
            for flag in producer_isa_flags(&bytes) {
                if !rec.isa_flags.contains(&flag) {
                    rec.isa_flags.push(flag);
                }
            }
        }
    }
    Ok(rec)
}

/// The `-m<isa>` flags of every gcc producer string (`GNU C++20 12.2.0 -march=znver3
/// -mmmx ... -mavx512f ...`, NUL-terminated, in `.debug_str`) in a shared object.
fn producer_isa_flags(so: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let needle = b"GNU C";
    let mut at = 0;
    while let Some(k) = so[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + k;
        let end = so[start..]
            .iter()
            .position(|&b| b == 0)
            .map_or(so.len(), |e| start + e);
        let text = String::from_utf8_lossy(&so[start..end]);
        for t in text.split_whitespace() {
            let Some(flag) = t.strip_prefix("-m") else {
                continue;
            };
            if flag.starts_with("no-") || flag.contains('=') {
                continue;
            }
            if !out.iter().any(|f| f == flag) {
                out.push(flag.to_string());
            }
        }
        at = end.max(start + 1);
    }
    out
}

/// The /proc/cpuinfo flag a gcc `-m<isa>` flag needs, for the instruction sets a
/// compiler may use on its own (vector, bit-manipulation); None for the others
/// (`-mxsave`, `-mrdrnd`, ...: used only through intrinsics, and inductor's
/// kernels use none of them).
fn cpuinfo_flag(gcc: &str) -> Option<String> {
    Some(match gcc {
        "sse3" => "pni".into(),
        "ssse3" | "sse4a" | "popcnt" | "movbe" | "fma" | "fma4" | "f16c" | "avx" | "avx2"
        | "bmi2" | "abm" | "gfni" | "vaes" | "vpclmulqdq" | "xop" | "tbm" | "adx" => gcc.into(),
        "sse4.1" => "sse4_1".into(),
        "sse4.2" => "sse4_2".into(),
        "bmi" => "bmi1".into(),
        "lzcnt" => "abm".into(),
        "avxvnni" => "avx_vnni".into(),
        // avx512f, avx512cd, avx512bw, avx512dq, avx512vl, avx512ifma, avx512vbmi keep
        // their names; the later ones gain an underscore (avx512_vnni, avx512_bf16, ...).
        f if f.starts_with("avx512") => match &f[6..] {
            "f" | "cd" | "bw" | "dq" | "vl" | "ifma" | "vbmi" | "er" | "pf" => f.into(),
            rest => format!("avx512_{rest}"),
        },
        f if f.starts_with("amx-") => f.replace('-', "_"),
        _ => return None,
    })
}

/// Why this CPU (`features`) cannot run code recorded as `rec`, or None.
pub fn code_cannot_run(rec: &CodeRecord, features: &[&str]) -> Option<String> {
    let native = rec.march.iter().any(|m| m == "native");
    let mut missing: Vec<String> = Vec::new();
    for flag in &rec.isa_flags {
        if let Some(f) = cpuinfo_flag(flag) {
            if !features.contains(&f.as_str()) && !missing.contains(&f) {
                missing.push(f);
            }
        }
    }
    let how = if native {
        "-march=native".to_string()
    } else {
        rec.march
            .iter()
            .map(|m| format!("-march={m}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !missing.is_empty() {
        return Some(format!(
            "its code was compiled with {how} for a CPU with {} (the compiler's record in the package's shared object), and this CPU lacks {}; running it would die of an illegal instruction",
            rec.isa_flags
                .iter()
                .filter(|f| f.starts_with("avx") || f.starts_with("amx") || *f == "fma")
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
            missing.join(", ")
        ));
    }
    if native && rec.isa_flags.is_empty() {
        return Some(
            "its code was compiled with -march=native (its sources record the command), and the package does not record which instruction sets that meant, so it may use any the building CPU had and die here of an illegal instruction".into(),
        );
    }
    None
}

/// The compile settings that give an AVX2 package whatever CPU compiles it: the
/// vector width, and a target CPU instead of inductor's default `-march=native`.
pub const AVX2_RECIPE: &str = r#"inductor_configs={"cpp.simdlen": 256, "cpp.march": "x86-64-v3"} (models/export.py does; `cpp.simdlen` alone still compiles with -march=native)"#;

/// The CPU flags the checks compare with: /proc/cpuinfo's, or the space-separated
/// list in `ROTBENCH_CPU_FLAGS` (to ask whether a package would run on another CPU).
fn checked_features() -> Vec<String> {
    match std::env::var("ROTBENCH_CPU_FLAGS") {
        Ok(v) => v.split_whitespace().map(str::to_owned).collect(),
        Err(_) => cpu_features(),
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
            let features = checked_features();
            let features: Vec<&str> = features.iter().map(String::as_str).collect();
            // The metadata first, then what the code itself records: the metadata
            // follows cpp.simdlen only, and -march=native code may use more.
            let why = cannot_run(
                get("AOTI_MACHINE"),
                get("AOTI_CPU_ISA"),
                std::env::consts::ARCH,
                &features,
            )
            .or_else(|| {
                code_record(path)
                    .ok()
                    .and_then(|rec| code_cannot_run(&rec, &features))
            });
            if let Some(why) = why {
                bail!(
                    "{}: this CPU cannot run the package: {why}; compile it for an older instruction set, for AVX2 with {AVX2_RECIPE}, or set ROTBENCH_SKIP_ISA_CHECK=1 to load it anyway",
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

    fn fixture(p: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    const AVX2_CPU: &[&str] = &[
        "sse4_1", "sse4_2", "pni", "ssse3", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2",
        "abm", "movbe",
    ];

    #[test]
    fn a_native_package_whose_metadata_says_avx2_is_refused_on_a_cpu_without_avx512() {
        // Issue #31, case 6: compiled with {"cpp.simdlen": 256} alone on an AVX-512
        // machine (tests/fixtures/models/make_pt2_native.py): AOTI_CPU_ISA "AVX2",
        // -march=native, and vmovdqu8 on zmm registers in its code.
        let rec = code_record(&fixture("tests/fixtures/models/pt2/native_avx512.pt2")).unwrap();
        assert_eq!(rec.march, ["native"], "{rec:?}");
        assert!(rec.isa_flags.iter().any(|f| f == "avx512f"), "{rec:?}");
        let why = code_cannot_run(&rec, AVX2_CPU).unwrap();
        assert!(
            why.contains("-march=native")
                && why.contains("this CPU lacks")
                && why.contains(" avx512f,"),
            "{why}"
        );
        // The metadata alone lets it through: that was the bug.
        assert_eq!(
            cannot_run("", "AVX2", std::env::consts::ARCH, AVX2_CPU),
            None
        );
        let mut all = AVX2_CPU.to_vec();
        let wide: Vec<String> = rec
            .isa_flags
            .iter()
            .filter_map(|f| cpuinfo_flag(f))
            .collect();
        all.extend(wide.iter().map(String::as_str));
        assert_eq!(
            code_cannot_run(&rec, &all),
            None,
            "the building CPU runs it"
        );
    }

    #[test]
    fn the_advised_recipe_gives_a_package_an_avx2_cpu_runs() {
        // models/*.pt2 are compiled with AVX2_RECIPE's settings.
        assert!(AVX2_RECIPE.contains(r#""cpp.march": "x86-64-v3""#));
        for m in ["mnist-cnn", "mnist-p4cnn"] {
            let rec = code_record(&fixture(&format!("models/{m}.pt2"))).unwrap();
            assert_eq!(rec.march, ["x86-64-v3"], "{m}: {rec:?}");
            assert!(
                !rec.isa_flags.iter().any(|f| f.starts_with("avx512")),
                "{m}: {rec:?}"
            );
            assert_eq!(code_cannot_run(&rec, AVX2_CPU), None, "{m}");
        }
        // A package that records -march=native and nothing else is refused.
        let bare = CodeRecord {
            march: vec!["native".into()],
            isa_flags: vec![],
        };
        assert!(code_cannot_run(&bare, AVX2_CPU)
            .unwrap()
            .contains("does not record"));
        assert_eq!(cpuinfo_flag("avx512vnni").as_deref(), Some("avx512_vnni"));
        assert_eq!(cpuinfo_flag("avx512vl").as_deref(), Some("avx512vl"));
        assert_eq!(cpuinfo_flag("sse4.2").as_deref(), Some("sse4_2"));
        assert_eq!(cpuinfo_flag("xsave"), None);
    }

    #[test]
    fn a_package_for_another_machine_is_refused() {
        let why = cannot_run("aarch64", "NEON", "x86_64", &["avx2"]).unwrap();
        assert!(why.contains("compiled for aarch64"), "{why}");
    }
}
