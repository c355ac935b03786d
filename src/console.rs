//! Standard output for the commands. A reader that closes it early
//! (`rotbench inspect m.pt | head -1`) ends the printing quietly, as ripgrep's
//! does: no panic, no message, and the run goes on to write its files whole.
//! Rust ignores SIGPIPE, so a write to a closed pipe is an `EPIPE` error, which
//! [`write`] drops (with any other error on stdout: the files are the results,
//! the console is a courtesy).

use std::fmt;
use std::io::Write;

/// Print to stdout, ignoring a closed or failing stdout.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.flush());
}

/// `print!` that never panics on a closed stdout.
macro_rules! out {
    ($($t:tt)*) => { $crate::console::write(format_args!($($t)*)) };
}

/// `println!` that never panics on a closed stdout.
macro_rules! outln {
    () => { $crate::console::write(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::write(format_args!("{}\n", format_args!($($t)*))) };
}
