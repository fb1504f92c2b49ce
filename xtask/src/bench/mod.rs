//! `cargo xtask bench ...`: each benchmark prints its figures and the baseline measured in the same
//! run. The code measured is the product's own commands, run as child processes and measured from
//! outside (`child`), so no product command carries measuring code.

mod cache;
mod child;
mod coldstart;
mod index;
mod large;
mod layer;
mod ztoc;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// zTOC build throughput against a bare inflate of the same bytes, and peak RSS.
    Ztoc(ztoc::BenchArgs),
    /// End-to-end indexing of a three-layer image from a local registry against a plain download.
    Index(index::BenchArgs),
    /// "No size limit": a 20 GB image indexed inside a kernel-enforced 1024 MiB memory limit.
    Large(large::LargeArgs),
    /// Cold start of the packaged `bootstrap`s: process start to the first Runtime API request.
    Coldstart(coldstart::ColdstartArgs),
    /// A backfill of images sharing a base layer, without and with the zTOC cache.
    Cache(cache::CacheArgs),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    // These benches run this binary's own commands as the measured children: a debug build
    // would time unoptimised code (coldstart measures the packaged `bootstrap`s instead).
    if cfg!(debug_assertions) && !matches!(bench, Bench::Coldstart(_)) {
        anyhow::bail!(
            "benchmarks measure a release build: cargo run --release -p xtask -- bench ..."
        );
    }
    match bench {
        Bench::Ztoc(args) => ztoc::bench(args),
        Bench::Index(args) => index::bench(args),
        Bench::Large(args) => large::bench(args),
        Bench::Coldstart(args) => coldstart::bench(args),
        Bench::Cache(args) => cache::bench(args),
    }
}
