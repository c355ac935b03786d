//! The TorchScript backend: a module loaded through the C++ shim
//! (src/shim/optimized.cpp), frozen and optimised for inference unless `--exact`,
//! with what the shim records at load: forward's declared return type and the
//! modules that run in training mode ([`TrainingMode`]).

use super::ForwardError;
use crate::ffi::shim_message;
use rotbench_core::spec::{Inference, Returns};
use std::ffi::{c_char, c_int, CStr};
use std::path::Path;
use tch::{Device, Tensor};

/// How to export TorchScript, for the messages about a file that is not.
pub(crate) const EXPORT: &str = "export it with `torch.jit.save(torch.jit.script(model.eval()), \"model.pt\")` (or torch.jit.trace)";

mod shim {
    use std::ffi::{c_char, c_int};
    #[repr(C)]
    pub struct RbModule {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn rb_load(
            path: *const c_char,
            device_kind: c_int,
            device_index: c_int,
            optimize: c_int,
            err: *mut *mut c_char,
        ) -> *mut RbModule;
        pub fn rb_info(m: *mut RbModule, what: c_int) -> *mut c_char;
        pub fn rb_forward(
            m: *mut RbModule,
            input: *const torch_sys::C_tensor,
            index: i64,
            key: *const c_char,
            err_kind: *mut c_int,
            err: *mut *mut c_char,
        ) -> *mut torch_sys::C_tensor;
        pub fn rb_free(m: *mut RbModule);
    }
}

/// A TorchScript module owned through the C++ shim (src/shim/optimized.cpp).
pub struct ScriptModule {
    ptr: *mut shim::RbModule,
}

impl ScriptModule {
    pub(crate) fn load(
        path: &Path,
        device: Device,
        inference: Inference,
    ) -> std::result::Result<Self, String> {
        let c_path = crate::ffi::c_path(path).map_err(|e| e.to_string())?;
        let (kind, index) = match device {
            Device::Cuda(i) => (1, i as c_int),
            _ => (0, 0),
        };
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid C string; err is an out-pointer the shim sets on failure.
        let ptr = unsafe {
            shim::rb_load(
                c_path.as_ptr(),
                kind,
                index,
                (inference == Inference::Optimized) as c_int,
                &mut err,
            )
        };
        if ptr.is_null() {
            return Err(shim_message(err));
        }
        Ok(ScriptModule { ptr })
    }

    /// Forward, then the logits from its output: the output itself, element
    /// `index` of a tuple or list, or the value under `key` of a dict.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        index: Option<usize>,
        key: Option<&CStr>,
    ) -> std::result::Result<Tensor, ForwardError> {
        let mut err: *mut c_char = std::ptr::null_mut();
        let mut kind: c_int = 0;
        let index = index.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
        let key = key.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: self.ptr is live; x.as_ptr() is a valid torch::Tensor* for the
        // call; key is null or a NUL-terminated string that outlives the call.
        let out =
            unsafe { shim::rb_forward(self.ptr, x.as_ptr(), index, key, &mut kind, &mut err) };
        if out.is_null() {
            let message = shim_message(err);
            return Err(if kind == 2 {
                ForwardError::Output(message)
            } else {
                ForwardError::Raised(message)
            });
        }
        // SAFETY: the shim hands over a new heap torch::Tensor*, which tch now owns.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// What the shim recorded at load, before eval() and freezing: 0 the training-mode
    /// report, 1 forward's declared return type, 2 the modules whose training flag is set.
    fn info(&self, what: c_int) -> String {
        // SAFETY: self.ptr is live; the shim returns a new malloc'd string.
        shim_message(unsafe { shim::rb_info(self.ptr, what) })
    }

    /// The modules whose code runs an op in training mode, each with those ops, and
    /// the modules saved with their training flag set.
    pub(crate) fn training_mode(&self) -> TrainingMode {
        TrainingMode {
            ops: self
                .info(0)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(m, op)| (m.to_string(), op.to_string()))
                .collect(),
            flags: self.info(2).lines().map(str::to_string).collect(),
        }
    }

    /// The type forward declares it returns.
    pub(crate) fn returns(&self) -> Returns {
        let text = self.info(1);
        let mut lines = text.lines();
        let (kind, ty) = lines
            .next()
            .and_then(|l| l.split_once('\t'))
            .unwrap_or(("other", "?"));
        match kind {
            "tensor" => Returns::Tensor,
            "tuple" => Returns::Tuple(lines.map(str::to_string).collect()),
            "dict" => Returns::Dict(ty.to_string()),
            "list" => Returns::List(ty.to_string()),
            _ => Returns::Other(ty.to_string()),
        }
    }
}

/// change nothing by themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainingMode {
    /// (module name, op) pairs; the top-level module's name is empty.
    pub ops: Vec<(String, String)>,
    /// The modules saved with their training flag set.
    pub flags: Vec<String>,
}

/// A module's name in messages.
pub fn module_name(m: &str) -> &str {
    if m.is_empty() {
        "(top level)"
    } else {
        m
    }
}

impl TrainingMode {
    /// True when an op runs in training mode (results change from run to run).
    pub fn is_on(&self) -> bool {
        !self.ops.is_empty()
    }

    /// "modules bn1, drop are" / "module drop is" / "the top-level module is".
    fn modules(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (m, _) in &self.ops {
            if !names.contains(&m.as_str()) {
                names.push(m);
            }
        }
        match names.as_slice() {
            [""] => "the top-level module is".to_string(),
            [one] => format!("module {one} is"),
            _ => format!(
                "modules {} are",
                names
                    .iter()
                    .map(|m| module_name(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// What training mode does here, e.g. "BatchNorm uses batch statistics and
    /// Dropout drops at random".
    pub fn effects(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for (_, op) in &self.ops {
            let e = if op.contains("batch_norm") {
                "BatchNorm uses batch statistics".to_string()
            } else if op.contains("dropout") {
                "Dropout drops at random".to_string()
            } else if op == "rrelu" {
                "RReLU draws random slopes".to_string()
            } else {
                format!("{op} runs in training mode")
            };
            if !out.contains(&e) {
                out.push(e);
            }
        }
        match out.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Refuse to run it, saying how to fix the export.
    pub(crate) fn refusal(&self, path: &Path) -> String {
        format!(
            "{}: {} in training mode (traced or scripted without .eval()): {}, so results change from run to run; re-export with `torch.jit.trace(model.eval(), x)` (or `torch.jit.script(model.eval())`), or pass --allow-training-mode to run it anyway",
            path.display(),
            self.modules(),
            self.effects()
        )
    }

    /// The warning a run with --allow-training-mode carries (stderr and summary.json).
    pub(crate) fn warning(&self, path: &Path) -> String {
        format!(
            "{}: {} in training mode (run anyway: --allow-training-mode): {}, so these results change from run to run; the prediction cache is not used for this model",
            path.display(),
            self.modules(),
            self.effects()
        )
    }
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        // SAFETY: allocated by rb_load, freed once.
        unsafe { shim::rb_free(self.ptr) }
    }
}
