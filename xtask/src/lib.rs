//! What other crates of the workspace share with `cargo xtask`: the Lambda architectures and
//! the workspace's layout (the end-to-end harness drives `cargo xtask package` with them and
//! finds its zips), and the OCI image layout store (`layout`, which xtask's tests drive too).
//! Everything else is in the binary.

pub mod arch;
pub mod layout;
pub mod workspace;
