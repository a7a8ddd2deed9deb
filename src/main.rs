//! The `promoter` binary: parse the command line, then hand over to [`promoter::cli`].

/// mimalloc, not the C library's malloc: every daemon cycle builds and drops tens of thousands
/// of small values (decisions, names, texts), and glibc's malloc spent about 40% of an idle
/// cycle's CPU at 10,000 services in its own bookkeeping (`docs/performance.md`, "The daemon's
/// idle cycle"). The benchmarks use the same allocator (`benches/support/allocator.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    promoter::cli::main()
}
