//! Writes the seed zTOCs (the fixed layers' own, gzip and uncompressed) into the `ztoc` corpus:
//! `cargo run --example seed` from `tests/fuzz`.

use soci_core::Compression;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ztoc");
    std::fs::create_dir_all(&dir)?;
    // The first byte picks the layer the target checks against: even gzip, odd uncompressed.
    for (name, flag, compression) in [
        ("seed-gzip", 0u8, Compression::Gzip),
        ("seed-uncompressed", 1, Compression::Uncompressed),
    ] {
        let mut input = vec![flag];
        input.extend(soci_fuzz::seed_ztoc(compression));
        std::fs::write(dir.join(name), input)?;
    }
    let tar = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/tar_reader");
    std::fs::create_dir_all(&tar)?;
    std::fs::write(tar.join("seed-tar"), &*soci_fuzz::TAR)
}
