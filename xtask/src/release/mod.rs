//! Release tooling: reproducible Lambda zips (`package`) and their upload (`publish`).

pub mod package;
pub mod publish;
