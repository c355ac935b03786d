//! The commands: glue between the checked CLI config, the library, the output
//! writer and the terminal. The only place that prints. One file per command.

mod demo;
mod doctor;
mod gate;
mod inspect;
mod merge;
mod protocols;
mod reference;
mod report;
mod rotate;
mod sweep;
mod write;

pub use demo::demo;
pub use doctor::doctor;
pub use gate::gate;
pub use inspect::inspect;
pub use merge::merge;
pub use protocols::protocols;
pub use reference::{completions, reference};
pub use report::report;
pub use rotate::rotate;
pub use sweep::sweep;
