//! What other crates of the workspace share with `cargo xtask`: the Lambda architectures
//! (the end-to-end harness drives `cargo xtask package` with them). Everything else is in the
//! binary.

pub mod arch;
