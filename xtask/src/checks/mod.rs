//! The project's own checks: `setup` (what the tests need), `test` (all of them), `terraform`
//! (the module) and `e2e` (the packaged Lambdas on a local stack).

pub mod e2e;
pub mod setup;
pub mod terraform;
pub mod test;
