//! The `promoter` binary: parse the command line, then hand over to [`promoter::cli`].

fn main() -> std::process::ExitCode {
    promoter::cli::main()
}
