//! `cargo xtask bench ...`: each benchmark prints its figures and the baseline measured in the same run.

#[derive(clap::Subcommand)]
pub enum Bench {
    /// zTOC build throughput against a bare inflate of the same bytes, and peak RSS.
    Ztoc(crate::ztoc::BenchArgs),
    /// End-to-end indexing of a three-layer image from a local registry against a plain download.
    Index(crate::index::BenchArgs),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Ztoc(args) => crate::ztoc::bench(args),
        Bench::Index(args) => crate::index::bench(args),
    }
}
