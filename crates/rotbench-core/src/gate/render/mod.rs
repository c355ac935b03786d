//! The verdict's three renderings; each returns text or bytes, none writes.

mod junit;
mod markdown;
mod text;

pub use junit::{render_junit, xml_escape};
pub use markdown::render_markdown;
pub use text::render_text;
