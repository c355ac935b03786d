//! The `rotbench` binary: parse arguments, run a command, map the outcome to an
//! exit code (0 success, 1 failed gate, 2 error). Errors print one clear message,
//! never a panic or a backtrace.

#[macro_use]
mod console;
mod cli;
mod commands;
mod openmp_wait;
mod run;

use clap::Parser;
use std::process::ExitCode;

fn run() -> anyhow::Result<ExitCode> {
    let (argv, protocol) = cli::expand_protocol(std::env::args_os().collect())?;
    let mut cli = match cli::Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return Ok(ExitCode::from(code));
        }
    };
    if let cli::Command::Sweep(a) = &mut cli.command {
        a.protocol_use = protocol;
    }
    match cli.command {
        cli::Command::Sweep(a) => commands::sweep(a),
        cli::Command::Rotate(a) => commands::rotate(a),
        cli::Command::Inspect(a) => commands::inspect(a),
        cli::Command::Report(a) => commands::report(a),
        cli::Command::Gate(a) => commands::gate(a),
        cli::Command::Merge(a) => commands::merge(a),
        cli::Command::Demo(a) => commands::demo(a),
        cli::Command::Doctor(a) => commands::doctor(a),
        cli::Command::Protocols(a) => commands::protocols(a),
        cli::Command::Completions(a) => commands::completions(a),
        cli::Command::Reference(a) => commands::reference(a),
    }
}

fn main() -> ExitCode {
    // A bug must still end as a message and exit code 2, not an abort trace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report it): {info}");
    }));
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => match e.downcast_ref::<run::interrupt::Interrupted>() {
            // Ctrl-C: how far it got and how to continue, exit 130 as a shell's.
            Some(i) => {
                eprintln!("rotbench: {i}");
                ExitCode::from(130)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Err(_) => ExitCode::from(2),
    };
    exit_now(code)
}

/// End the process without running libtorch's static destructors, which
/// unregister its thousands of operators one by one (0.1 s of every run, as much
/// as a tenth of a small sweep; docs/performance.md). Everything rotbench writes
/// is on disk by now (each result file is synced before it is swapped in), and
/// stderr is unbuffered; stdout is flushed here. Where the exit code cannot be
/// read back, the process ends the usual way.
fn exit_now(code: ExitCode) -> ExitCode {
    use std::io::Write;
    let Some(value) = [0u8, 1, 2, 130]
        .into_iter()
        .find(|&v| ExitCode::from(v) == code)
    else {
        return code;
    };
    // As at a normal exit, a stdout that cannot take the rest (a closed pipe) is
    // not an error: the console already stopped writing to it.
    let _ = std::io::stdout().flush();
    // SAFETY: `_exit` ends the process at once; no Rust state is used after it.
    unsafe { libc::_exit(i32::from(value)) }
}
