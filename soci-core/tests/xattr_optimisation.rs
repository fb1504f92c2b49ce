//! soci's xattr optimisation: `BuiltZtoc::xattrs_disableable`, which decides whether a zTOC
//! descriptor may carry `com.amazon.soci.disable-xattrs: "true"`, must be true exactly when the
//! reference's `shouldDisableXattrs` would say so: no entry has a PAX record whose key starts
//! with `SCHILY.xattr.` (other xattr spellings such as `LIBARCHIVE.xattr.*` do not count) and no
//! entry name ends in `.wh..wh..opq`. The flag is computed in the same pass and never changes
//! the zTOC bytes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use soci_core::index::ZtocLayer;
use soci_core::oci::ANNOTATION_DISABLE_XATTRS;
use soci_core::{BuildOptions, Compression, MemoryBudget, build_reference_ztoc, build_ztoc};

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

fn json(path: &Path) -> Value {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("conformance file {} is missing: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The reference's rule, applied to the TOC entries the reference itself wrote
/// (`expected.json`), so the expectation does not come from the code under test.
fn reference_would_disable(expected: &Value) -> bool {
    let entries = expected["entries"].as_array().expect("entries");
    !entries.iter().any(|e| {
        let name = e["name"].as_str().expect("entry name");
        let schily = e["xattrs"]
            .as_array()
            .expect("entry xattrs")
            .iter()
            .any(|x| {
                x["key"]
                    .as_str()
                    .expect("xattr key")
                    .starts_with("SCHILY.xattr.")
            });
        schily || name.ends_with(".wh..wh..opq")
    })
}

#[test]
fn every_reference_layer_qualifies_exactly_when_the_reference_says_so() {
    let dir = conformance_dir();
    let cases = json(&dir.join("cases.json"));
    let mut failures = Vec::new();
    let (mut qualified, mut not) = (Vec::new(), Vec::new());
    for case in cases["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let expected_path = dir.join("vectors").join(name).join("expected.json");
        if !expected_path.exists() {
            // A case the reference rejects: no zTOC, nothing to annotate.
            continue;
        }
        let expected = json(&expected_path);
        let compression = match case["compression"].as_str() {
            Some("gzip") => Compression::Gzip,
            Some("uncompressed") => Compression::Uncompressed,
            other => panic!("{name}: unknown compression {other:?}"),
        };
        let layer = std::fs::read(dir.join(case["file"].as_str().expect("file")))
            .unwrap_or_else(|e| panic!("{name}: layer file: {e}"));
        let options = BuildOptions {
            span_size: case["span_size"].as_u64().expect("span_size"),
            build_tool: case["build_tool"].as_str().expect("build_tool").into(),
            compression,
            expected_digest: None,
            budget: MemoryBudget::default(),
        };
        let built = match build_reference_ztoc(layer.as_slice(), &options) {
            Ok(b) => b.ztoc,
            Err(e) => {
                failures.push(format!("{name}: build failed: {e}"));
                continue;
            }
        };
        let want = reference_would_disable(&expected);
        if built.xattrs_disableable != want {
            failures.push(format!(
                "{name}: xattrs_disableable = {}, the reference's rule gives {want}",
                built.xattrs_disableable
            ));
        }
        if want {
            qualified.push(name.to_string());
        } else {
            not.push(name.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The set must exercise both answers, including the two layers that exist for this rule.
    assert!(not.iter().any(|n| n == "pax_xattrs"), "{not:?}");
    assert!(not.iter().any(|n| n == "whiteouts"), "{not:?}");
    assert!(qualified.len() >= 20, "{qualified:?}");
}

/// One tar entry: name, PAX records to put before it, whether it is a directory.
struct TarEntry<'a> {
    name: &'a str,
    pax: &'a [(&'a str, &'a [u8])],
    dir: bool,
}

fn entry<'a>(name: &'a str, pax: &'a [(&'a str, &'a [u8])]) -> TarEntry<'a> {
    TarEntry {
        name,
        pax,
        dir: name.ends_with('/'),
    }
}

fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.pax.is_empty() {
            builder
                .append_pax_extensions(e.pax.iter().copied())
                .expect("pax header");
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(e.name).expect("path");
        h.set_mtime(1_700_000_000);
        let data: &[u8] = if e.dir { b"" } else { b"hello\n" };
        if e.dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).expect("entry");
    }
    builder.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn options(compression: Compression) -> BuildOptions {
    BuildOptions {
        span_size: 64 * 1024,
        build_tool: "xattr test".into(),
        compression,
        expected_digest: None,
        budget: MemoryBudget::default(),
    }
}

/// `(gzip result, uncompressed result)` of `xattrs_disableable` for a layer of `entries`.
fn disableable(entries: &[TarEntry<'_>]) -> (bool, bool) {
    let tar = tar_of(entries);
    let gz = build_ztoc(gzip(&tar).as_slice(), &options(Compression::Gzip)).expect("gzip build");
    let plain = build_ztoc(tar.as_slice(), &options(Compression::Uncompressed)).expect("tar build");
    (gz.xattrs_disableable, plain.xattrs_disableable)
}

#[test]
fn a_layer_qualifies_only_without_schily_xattrs_and_opaque_whiteouts() {
    let plain: &[(&str, &[u8])] = &[];
    let neither = [entry("etc/", plain), entry("etc/hosts", plain)];
    assert_eq!(disableable(&neither), (true, true), "neither: qualifies");

    let xattr: &[(&str, &[u8])] = &[("SCHILY.xattr.security.capability", b"\x01\x00")];
    let with_xattr = [entry("bin/", plain), entry("bin/ping", xattr)];
    assert_eq!(disableable(&with_xattr), (false, false), "xattr record");

    // An empty value is still a record the consumer would apply.
    let empty: &[(&str, &[u8])] = &[("SCHILY.xattr.user.empty", b"")];
    assert_eq!(
        disableable(&[entry("f", empty)]),
        (false, false),
        "empty xattr value"
    );

    let opaque = [
        entry("var/cache/", plain),
        entry("var/cache/.wh..wh..opq", plain),
    ];
    assert_eq!(disableable(&opaque), (false, false), "opaque whiteout");

    // The reference tests the suffix of the whole name, not the base name.
    assert_eq!(
        disableable(&[entry("var/x.wh..wh..opq", plain)]),
        (false, false),
        "suffix match"
    );
    // An opaque whiteout named through a PAX `path` record counts under that name.
    let pax_path: &[(&str, &[u8])] = &[("path", b"deep/dir/.wh..wh..opq")];
    assert_eq!(
        disableable(&[entry("placeholder", pax_path)]),
        (false, false),
        "PAX path"
    );

    // What the reference does not count: a plain whiteout, other PAX records, other xattr
    // spellings (only `SCHILY.xattr.` is read as an xattr by Go and the snapshotter).
    let libarchive: &[(&str, &[u8])] = &[
        ("LIBARCHIVE.xattr.user.b64", b"aGVsbG8"),
        ("mtime", b"1700000000.5"),
        ("SCHILY.dev", b"2049"),
    ];
    let other = [
        entry("etc/", plain),
        entry("etc/.wh.removed.conf", plain),
        entry("etc/misc", libarchive),
        entry("etc/.wh..wh..opq.not-at-the-end", plain),
    ];
    assert_eq!(
        disableable(&other),
        (true, true),
        "nothing the reference counts"
    );
}

#[test]
fn the_flag_never_changes_the_ztoc_bytes_and_only_adds_the_annotation() {
    let plain: &[(&str, &[u8])] = &[];
    let tar = tar_of(&[entry("etc/", plain), entry("etc/hosts", plain)]);
    let layer = gzip(&tar);
    let built = build_ztoc(layer.as_slice(), &options(Compression::Gzip)).expect("build");
    assert!(built.xattrs_disableable);
    // No build option selects the optimisation: the same bytes in give the same zTOC out.
    let again = build_ztoc(layer.as_slice(), &options(Compression::Gzip)).expect("build");
    assert_eq!(built.ztoc, again.ztoc);

    let layer_of = |disable_xattrs| ZtocLayer {
        ztoc_digest: "sha256:".to_string() + &"ab".repeat(32),
        ztoc_size: built.ztoc.len() as i64,
        layer_digest: built.layer_digest.clone(),
        layer_media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        span_size: 64 * 1024,
        disable_xattrs,
    };
    let off = layer_of(false).descriptor();
    let on = layer_of(true).descriptor();
    assert!(!off.annotations.contains_key(ANNOTATION_DISABLE_XATTRS));
    assert_eq!(
        on.annotations
            .get(ANNOTATION_DISABLE_XATTRS)
            .map(String::as_str),
        Some("true")
    );
    let mut without = on.annotations.clone();
    without.remove(ANNOTATION_DISABLE_XATTRS);
    assert_eq!(without, off.annotations, "nothing else differs");
    assert_eq!(
        (on.digest.as_str(), on.size),
        (off.digest.as_str(), off.size)
    );
}
