//! The `surge` command line: arguments parsed in one place, the work done by library code.

mod bench;
mod cell_cli;
mod cli;
mod demo;
mod methods_cli;
mod optimize_cli;
mod rls_balanced;

fn main() -> std::process::ExitCode {
    // Die quietly when the reader of stdout goes away (`surge data info ... | head`), as Unix tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
