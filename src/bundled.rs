//! The bundled demo: the three MNIST models (with their spec sidecars) and the
//! MNIST test set that ship with rotbench, found in one place for `rotbench demo`
//! and `rotbench doctor`: the folder named by `ROTBENCH_SHARE` (the wheel's
//! launcher sets it to the installed package's `share/`), else the source checkout
//! the binary was built from.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The bundled models, relative to the bundle's root, in the demo's order.
pub const MODELS: [&str; 3] = [
    "models/mnist-cnn.pt",
    "models/mnist-cnn-aug.pt",
    "models/mnist-p4cnn.pt",
];
/// The bundled MNIST test set (IDX, gzip), relative to the bundle's root.
pub const DATA: &str = "datasets/mnist";
const DATA_FILES: [&str; 2] = ["t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz"];

/// Where the bundle is and how it got there.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub root: PathBuf,
    /// True when `ROTBENCH_SHARE` named it (an installed wheel), false for the
    /// source checkout.
    pub installed: bool,
}

impl Bundle {
    pub fn find() -> Bundle {
        match std::env::var_os("ROTBENCH_SHARE") {
            Some(p) if !p.is_empty() => Bundle {
                root: PathBuf::from(p),
                installed: true,
            },
            _ => Bundle {
                root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                installed: false,
            },
        }
    }

    pub fn models(&self) -> Vec<PathBuf> {
        MODELS.iter().map(|m| self.root.join(m)).collect()
    }

    pub fn data(&self) -> PathBuf {
        self.root.join(DATA)
    }

    /// Every bundled file that is missing, as an error naming them and the fix.
    pub fn check(&self) -> Result<()> {
        let mut want: Vec<PathBuf> = Vec::new();
        for m in MODELS {
            want.push(self.root.join(m));
            want.push(self.root.join(Path::new(m).with_extension("json")));
        }
        want.extend(DATA_FILES.iter().map(|f| self.data().join(f)));
        let missing: Vec<String> = want
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let fix = if self.installed {
            "reinstall the wheel (`pip install --force-reinstall rotbench-*.whl`)".to_string()
        } else {
            format!(
                "restore them in the checkout (`git -C {} checkout -- models datasets`), or set ROTBENCH_SHARE to a folder that holds models/ and datasets/mnist/",
                self.root.display()
            )
        };
        bail!(
            "the bundled demo files are missing: {}; {fix}",
            missing.join(", ")
        )
    }
}
