//! The binary's allocator (`src/main.rs`), so that a benchmark measures the memory and CPU the
//! daemon spends. Each benchmark includes this file with `#[path]`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
