//! What other crates of the workspace share with `cargo xtask`: the Lambda architectures and
//! the workspace's layout (the end-to-end harness drives `cargo xtask package` with them and
//! finds its zips). Everything else is in the binary.

pub mod arch;
pub mod workspace;
