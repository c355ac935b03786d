//! The libtorch this process runs on, found at run time: the folder of the loaded
//! `libtorch_cpu.so`, its version and where it came from (rotbench's cache, a
//! `LIBTORCH` folder, or a Python torch package), and CUDA.
//!
//! One binary serves CPU and CUDA: it links only `libtorch_cpu.so`, and when
//! `libtorch_cuda.so` sits beside it (a CUDA build of torch), [`load_cuda`] opens it
//! with `RTLD_GLOBAL` before the first CUDA call, which registers libtorch's CUDA
//! hooks. A CPU-only libtorch has no such file, and CUDA is then reported unavailable
//! with the reason.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the libtorch in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A Python `torch` package (`.../site-packages/torch/lib`), as the wheel's
    /// launcher uses.
    PythonTorch,
    /// rotbench's own cache, filled by `scripts/setup-libtorch.sh`.
    Cache,
    /// Any other folder: a `LIBTORCH` the builder chose, or `LD_LIBRARY_PATH`.
    Other,
}

impl Origin {
    pub fn describe(&self) -> &'static str {
        match self {
            Origin::PythonTorch => "the Python torch package",
            Origin::Cache => "rotbench's cache (scripts/setup-libtorch.sh)",
            Origin::Other => "a LIBTORCH folder or LD_LIBRARY_PATH",
        }
    }
}

/// The libtorch this process has loaded.
#[derive(Debug, Clone)]
pub struct Libtorch {
    /// The folder holding the loaded `libtorch_cpu.so`.
    pub lib_dir: PathBuf,
    /// Its version, from the folder's `build-version` (a libtorch distribution or
    /// rotbench's cache) or the Python package's `version.py`; None when neither is there.
    pub version: Option<String>,
    pub origin: Origin,
}

/// Paths of the shared objects mapped into this process whose file name starts
/// with `prefix` (Linux: /proc/self/maps), in order of first appearance.
pub fn loaded_libraries(prefix: &str) -> Vec<PathBuf> {
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let p = Path::new(path);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(prefix) && !out.iter().any(|o| o == p) {
            out.push(p.to_path_buf());
        }
    }
    out
}

/// The libtorch in use: found from the loaded `libtorch_cpu.so`.
pub fn current() -> Option<Libtorch> {
    let so = loaded_libraries("libtorch_cpu.so").into_iter().next()?;
    let lib_dir = so.parent()?.to_path_buf();
    let lib_dir = fs::canonicalize(&lib_dir).unwrap_or(lib_dir);
    let root = lib_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let python = root.join("version.py");
    let (version, origin) = if python.is_file() && root.file_name() == Some("torch".as_ref()) {
        (python_torch_version(&python), Origin::PythonTorch)
    } else {
        let v = fs::read_to_string(root.join("build-version"))
            .ok()
            .map(|s| s.trim().to_owned());
        let cache = root
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libtorch-") && n.ends_with("-cpu"))
            && root.parent().and_then(Path::file_name) == Some("rotbench".as_ref());
        (v, if cache { Origin::Cache } else { Origin::Other })
    };
    Some(Libtorch {
        lib_dir,
        version,
        origin,
    })
}

extern "C" {
    /// src/shim/optimized.cpp: `at::show_config()` of the loaded libtorch.
    fn rb_show_config() -> *mut c_char;
}

/// The version of the libtorch this process runs on, as the loaded library
/// reports it: `TORCH_VERSION` in its build settings (`at::show_config()`, what
/// `torch.__config__.show()` prints). The wheel runs on whatever torch 2.13.x is
/// installed, so this, not the version rotbench was built against, goes into the
/// prediction-cache and checkpoint keys, summary.json, inspect and doctor. Falls
/// back to the version file beside the loaded library, then to the build's.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        // SAFETY: the shim returns a new malloc'd string, which shim_message frees.
        let config = crate::ffi::shim_message(unsafe { rb_show_config() });
        torch_version_in(&config)
            .or_else(|| current().and_then(|l| l.version))
            .unwrap_or_else(|| crate::LIBTORCH_VERSION.to_string())
    })
}

/// `TORCH_VERSION=2.13.0` in `at::show_config()`'s build settings.
fn torch_version_in(config: &str) -> Option<String> {
    let at = config.find("TORCH_VERSION=")? + "TORCH_VERSION=".len();
    let v: String = config[at..]
        .chars()
        .take_while(|c| !matches!(c, ',' | ' ' | '\n'))
        .collect();
    (!v.is_empty()).then_some(v)
}

/// `__version__ = '2.13.0+cpu'` from torch's version.py.
fn python_torch_version(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("__version__")?;
        let v = rest.trim_start().strip_prefix('=')?.trim();
        Some(v.trim_matches(|c| c == '\'' || c == '"').to_owned())
    })
}

/// Whether a libtorch version is the one rotbench was built for: same major and
/// minor (`2.13.0+cpu` and `2.13.1` match `2.13.0`).
pub fn version_matches(found: &str, built_for: &str) -> bool {
    let mm = |v: &str| -> Vec<String> {
        v.split(['.', '+'])
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    mm(found) == mm(built_for)
}

/// What opening `libtorch_cuda.so` gave.
#[derive(Debug, Clone)]
pub enum Cuda {
    /// Loaded from this path.
    Loaded(PathBuf),
    /// The libtorch in use has no `libtorch_cuda.so`: a CPU-only build.
    CpuOnly(PathBuf),
    /// It is there but would not load (a missing CUDA runtime library, say).
    Failed(PathBuf, String),
    /// No libtorch_cpu.so was found in the process (should not happen).
    NoLibtorch,
}

use libc::{dlerror, dlopen, dlsym, RTLD_GLOBAL, RTLD_NOLOAD, RTLD_NOW};

fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string owned by libc.
    let e = unsafe { dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// `dlopen(path, RTLD_NOW | RTLD_GLOBAL)`, kept open for the process's life: what it
/// defines, and its soname, serve every library loaded after it.
pub(crate) fn open_global(path: &Path) -> std::result::Result<(), String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())?;
    // SAFETY: a valid C string; the handle is never closed.
    let h = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if h.is_null() {
        Err(last_dl_error())
    } else {
        Ok(())
    }
}

/// Open `libtorch_cuda.so` beside the libtorch in use, once per process, before
/// any CUDA call. Cheap when it is absent; loading it takes a moment (its CUDA
/// libraries are large), so it is done only when a command asks for a GPU.
pub fn load_cuda() -> &'static Cuda {
    static CUDA: OnceLock<Cuda> = OnceLock::new();
    CUDA.get_or_init(|| {
        let Some(lt) = current() else {
            return Cuda::NoLibtorch;
        };
        let so = lt.lib_dir.join("libtorch_cuda.so");
        if !so.exists() {
            return Cuda::CpuOnly(lt.lib_dir);
        }
        match open_global(&so) {
            Ok(()) => Cuda::Loaded(so),
            Err(e) => Cuda::Failed(so, e),
        }
    })
}

/// Open `name` (e.g. `libtorch.so`) from the folder of the libtorch in use, with
/// `RTLD_GLOBAL`, so that code loaded later (an AOTInductor package's `.so`) finds
/// it by its soname. The binary itself links only libtorch_cpu.so and libc10.so.
pub fn preload(name: &str) -> std::result::Result<(), String> {
    let Some(lt) = current() else {
        return Err("libtorch_cpu.so is not mapped into this process".into());
    };
    let so = lt.lib_dir.join(name);
    open_global(&so).map_err(|e| format!("{}: {e}", so.display()))
}

/// What stands between this process and a GPU, with the fix, or None when
/// libtorch sees one.
pub fn cuda_problem(cuda: &Cuda) -> Option<String> {
    Some(match cuda {
        Cuda::Loaded(so) => {
            if tch::Cuda::is_available() {
                return None;
            }
            format!(
                "libtorch has CUDA ({}) but sees no GPU: check that `nvidia-smi` lists one and that CUDA_VISIBLE_DEVICES does not hide it",
                so.display()
            )
        }
        Cuda::CpuOnly(dir) => format!(
            "the libtorch in use ({}) is a CPU-only build: it has no libtorch_cuda.so. Run on a CUDA build of torch {} (from the wheel: `pip install torch=={}` in the same environment; from source: LIBTORCH=<a CUDA libtorch> make build)",
            dir.display(),
            crate::LIBTORCH_VERSION,
            crate::LIBTORCH_VERSION
        ),
        Cuda::Failed(so, e) => format!(
            "{} would not load ({e}); reinstall torch {} with its CUDA libraries (`pip install --force-reinstall torch=={}`)",
            so.display(),
            crate::LIBTORCH_VERSION,
            crate::LIBTORCH_VERSION
        ),
        Cuda::NoLibtorch => "libtorch_cpu.so is not mapped into this process".into(),
    })
}

/// Why `--device cuda` cannot run, with the fix, or None when libtorch sees a GPU.
/// `flag` is how the caller names the request (`--device cuda`).
pub fn cuda_unavailable(flag: &str) -> Option<String> {
    cuda_problem(load_cuda()).map(|why| format!("{flag}: {why}; or use --device cpu"))
}

/// One CUDA device as the driver describes it.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub index: usize,
    pub name: String,
    pub memory_bytes: u64,
    pub compute_capability: (i32, i32),
}

/// The driver's and the runtime's CUDA versions (e.g. 13000 for 13.0) and the
/// devices, read through the driver library libtorch's CUDA runtime loaded. Call
/// after [`load_cuda`] gave `Loaded` and a CUDA call was made.
#[derive(Debug, Clone, Default)]
pub struct CudaInfo {
    pub driver: Option<i32>,
    pub runtime: Option<i32>,
    pub devices: Vec<GpuInfo>,
}

/// `major.minor` of a CUDA version number (12040 -> 12.4).
pub fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

fn open_loaded(prefix: &str) -> Option<*mut c_void> {
    let path = loaded_libraries(prefix).into_iter().next()?;
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: RTLD_NOLOAD only returns a handle to a library already mapped.
    let h = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_NOLOAD) };
    (!h.is_null()).then_some(h)
}

fn symbol<T>(h: *mut c_void, name: &str) -> Option<T> {
    let c = CString::new(name).ok()?;
    // SAFETY: h is a live handle; the caller names the symbol's true type T (a fn pointer).
    let p = unsafe { dlsym(h, c.as_ptr()) };
    if p.is_null() {
        None
    } else {
        Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
    }
}

pub fn cuda_info() -> CudaInfo {
    let mut info = CudaInfo::default();
    if let Some(h) = open_loaded("libcudart.so") {
        type GetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;
        if let Some(f) = symbol::<GetVersion>(h, "cudaRuntimeGetVersion") {
            let mut v = 0;
            if unsafe { f(&mut v) } == 0 {
                info.runtime = Some(v);
            }
        }
    }
    let Some(h) = open_loaded("libcuda.so") else {
        return info;
    };
    type Init = unsafe extern "C" fn(u32) -> c_int;
    type GetInt = unsafe extern "C" fn(*mut c_int) -> c_int;
    type GetDevice = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type GetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type TotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
    type Attribute = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
    let (Some(init), Some(version), Some(count), Some(get), Some(name), Some(mem), Some(attr)) = (
        symbol::<Init>(h, "cuInit"),
        symbol::<GetInt>(h, "cuDriverGetVersion"),
        symbol::<GetInt>(h, "cuDeviceGetCount"),
        symbol::<GetDevice>(h, "cuDeviceGet"),
        symbol::<GetName>(h, "cuDeviceGetName"),
        symbol::<TotalMem>(h, "cuDeviceTotalMem_v2"),
        symbol::<Attribute>(h, "cuDeviceGetAttribute"),
    ) else {
        return info;
    };
    // SAFETY: the CUDA driver API with out-pointers to locals; cuInit is idempotent.
    unsafe {
        if init(0) != 0 {
            return info;
        }
        let mut v = 0;
        if version(&mut v) == 0 {
            info.driver = Some(v);
        }
        let mut n = 0;
        if count(&mut n) != 0 {
            return info;
        }
        for i in 0..n.max(0) {
            let mut dev = 0;
            if get(&mut dev, i) != 0 {
                continue;
            }
            let mut buf = [0 as c_char; 256];
            let name = if name(buf.as_mut_ptr(), buf.len() as c_int, dev) == 0 {
                CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
            } else {
                "?".into()
            };
            let mut bytes = 0usize;
            mem(&mut bytes, dev);
            // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
            let (mut major, mut minor) = (0, 0);
            attr(&mut major, 75, dev);
            attr(&mut minor, 76, dev);
            info.devices.push(GpuInfo {
                index: i as usize,
                name,
                memory_bytes: bytes as u64,
                compute_capability: (major, minor),
            });
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_libtorch_reports_its_own_version() {
        let cfg = "PyTorch built with:\n  - Build settings: BLAS_INFO=open, TORCH_VERSION=2.13.0, USE_CUDA=OFF, \n";
        assert_eq!(torch_version_in(cfg).as_deref(), Some("2.13.0"));
        assert_eq!(torch_version_in("no settings"), None);
        assert!(
            version_matches(version(), crate::LIBTORCH_VERSION),
            "{}",
            version()
        );
    }

    #[test]
    fn versions_match_on_major_and_minor_only() {
        assert!(version_matches("2.13.0", "2.13.0"));
        assert!(version_matches("2.13.0+cpu", "2.13.0"));
        assert!(version_matches("2.13.1", "2.13.0"));
        assert!(!version_matches("2.12.0", "2.13.0"));
        assert!(!version_matches("2.1.3", "2.13.0"));
        assert!(!version_matches("3.13.0", "2.13.0"));
    }

    #[test]
    fn the_python_version_file_is_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("version.py");
        fs::write(
            &p,
            "from typing import Optional\n__version__ = '2.13.0+cpu'\ndebug = False\n",
        )
        .unwrap();
        assert_eq!(python_torch_version(&p).as_deref(), Some("2.13.0+cpu"));
    }

    #[test]
    fn the_loaded_libtorch_is_found_with_its_version() {
        // Touch libtorch so that it is mapped (it is linked, so it always is).
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let lt = current().expect("libtorch_cpu.so is mapped");
        assert!(lt.lib_dir.join("libtorch_cpu.so").is_file());
        let v = lt.version.expect("a version");
        assert!(version_matches(&v, crate::LIBTORCH_VERSION), "{v}");
    }

    #[test]
    fn cuda_versions_print_as_major_minor() {
        assert_eq!(cuda_version(13000), "13.0");
        assert_eq!(cuda_version(12040), "12.4");
    }
}
