//! The `surge` command line: parse, dispatch, map errors to the exit code.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Die quietly when the reader of stdout goes away (`surge data info ... | head`), as Unix tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match cli::Cli::parse().command.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
