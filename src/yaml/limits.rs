//! Bounds on untrusted YAML input, so that a hostile or broken file is refused quickly instead
//! of exhausting memory or time. Aliases are never expanded by promoter, so a "billion laughs"
//! file costs no more than its own size.

/// Largest file promoter reads as YAML: far above any values.yaml or rendered manifest
/// (the largest in the test corpus, Argo CD's 34,000-line install.yaml, is under 2 MB).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Deepest nesting of collections accepted (the parser's own limit for `[ ]` and `{ }`).
pub const MAX_DEPTH: usize = 255;
