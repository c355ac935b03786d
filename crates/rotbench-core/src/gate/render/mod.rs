//! The verdict's three renderings; each returns text or bytes, none writes.

use super::*;

mod junit;
mod markdown;
mod text;

pub use junit::*;
pub use markdown::*;
pub use text::*;
