//! Property tests: random trees of files, links and directories, tarred (the `tar` crate, an
//! independent writer), gzipped with random levels and random member splits. Every regular
//! file extracted through the zTOC must equal its content, and `verify` must pass.

use std::io::Write;

use proptest::prelude::*;
use soci_core::{BuildOptions, Compression, MemoryBudget, build_ztoc, extract_file, verify};

#[derive(Clone, Debug)]
enum Node {
    File {
        name: String,
        content: Vec<u8>,
        mode: u32,
    },
    Dir {
        name: String,
    },
    Symlink {
        name: String,
        target: String,
    },
    HardLink {
        name: String,
        target_index: usize,
    },
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        (0usize..200_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        (1usize..70_000, any::<u64>()).prop_map(|(n, seed)| {
            let mut x = seed | 1;
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"abcdefgh \n"[(x % 10) as usize]
                })
                .collect()
        }),
    ]
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    let name = "[a-z]{1,12}(/[a-z0-9_-]{1,20}(\\.[a-z]{1,3})?){0,3}";
    let node = prop_oneof![
        6 => (name, content(), prop::sample::select(vec![0o644u32, 0o755, 0o600, 0o4755])).prop_map(|(name, content, mode)| Node::File { name, content, mode }),
        1 => name.prop_map(|name| Node::Dir { name }),
        1 => (name, name).prop_map(|(name, target)| Node::Symlink { name, target }),
        1 => (name, any::<usize>()).prop_map(|(name, target_index)| Node::HardLink { name, target_index }),
    ];
    prop::collection::vec(node, 1..25)
}

/// Unique names (a later duplicate would shadow an earlier file in `extract_file`).
fn dedupe(nodes: Vec<Node>) -> Vec<Node> {
    let mut seen = std::collections::HashSet::new();
    nodes
        .into_iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let name = match &node {
                Node::File { name, .. }
                | Node::Dir { name }
                | Node::Symlink { name, .. }
                | Node::HardLink { name, .. } => {
                    format!("n{i}/{name}")
                }
            };
            seen.insert(name.clone()).then_some(match node {
                Node::File { content, mode, .. } => Node::File {
                    name,
                    content,
                    mode,
                },
                Node::Dir { .. } => Node::Dir { name },
                Node::Symlink { target, .. } => Node::Symlink { name, target },
                Node::HardLink { target_index, .. } => Node::HardLink { name, target_index },
            })
        })
        .collect()
}

fn tar_bytes(nodes: &[Node]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let files: Vec<&str> = nodes
        .iter()
        .filter_map(|n| match n {
            Node::File { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for node in nodes {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(1000);
        header.set_gid(1000);
        match node {
            Node::File {
                name,
                content,
                mode,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, name, content.as_slice())
                    .unwrap();
            }
            Node::Dir { name } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{name}/"), std::io::empty())
                    .unwrap();
            }
            Node::Symlink { name, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, name, target).unwrap();
            }
            Node::HardLink { name, target_index } => {
                let Some(target) = files.get(target_index % files.len().max(1)) else {
                    continue;
                };
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                header.set_size(0);
                builder.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// Gzips `data` as one member per piece, cutting at the given fractions.
fn gzip_members(data: &[u8], cuts: &[f64], levels: &[u32]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * data.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    for (i, pair) in points.windows(2).enumerate() {
        let level = levels[i % levels.len()];
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        encoder.write_all(&data[pair[0]..pair[1]]).unwrap();
        out.extend(encoder.finish().unwrap());
    }
    if data.is_empty() {
        out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(levels[0]))
            .finish()
            .unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn files_extract_through_the_ztoc(
        nodes in nodes(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..4),
        levels in prop::collection::vec(0u32..=9, 1..4),
        span in prop::sample::select(vec![0u64, 1024, 65536, 300_000, 4 << 20]),
        uncompressed in any::<bool>(),
    ) {
        let nodes = dedupe(nodes);
        let tar = tar_bytes(&nodes);
        let (layer, compression, span) = if uncompressed {
            (tar.clone(), Compression::Uncompressed, span.max(512))
        } else {
            (gzip_members(&tar, &cuts, &levels), Compression::Gzip, span)
        };
        let options = BuildOptions { span_size: span, build_tool: "proptest".into(), compression, expected_digest: None, budget: MemoryBudget::default() };
        let built = build_ztoc(layer.as_slice(), &options).expect("build");
        let report = verify(&built.ztoc, layer.as_slice()).expect("verify runs");
        prop_assert!(report.is_ok(), "verify: {:?}", report.problems);
        for node in &nodes {
            if let Node::File { name, content, .. } = node {
                let data = extract_file(&built.ztoc, layer.as_slice(), name).expect("extract");
                prop_assert_eq!(&data, content, "content of {}", name);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096), gzip in any::<bool>()) {
        let compression = if gzip { Compression::Gzip } else { Compression::Uncompressed };
        let options = BuildOptions { span_size: 1024, build_tool: "fuzz".into(), compression, expected_digest: None, budget: MemoryBudget::default() };
        let _ = build_ztoc(data.as_slice(), &options);
        let _ = verify(&data, data.as_slice());
        let _ = soci_core::ztoc::Ztoc::from_bytes(&data);
    }
}

#[test]
fn a_digest_mismatch_is_reported() {
    let tar = tar_bytes(&[Node::File {
        name: "a".into(),
        content: b"hello".to_vec(),
        mode: 0o644,
    }]);
    let options = BuildOptions {
        span_size: 1024,
        build_tool: "t".into(),
        compression: Compression::Uncompressed,
        expected_digest: Some("sha256:0000".into()),
        budget: MemoryBudget::default(),
    };
    let err = build_ztoc(tar.as_slice(), &options).unwrap_err();
    assert!(
        matches!(err, soci_core::Error::DigestMismatch { .. }),
        "{err}"
    );
}

/// Hands out at most `limit` bytes per read, so the indexer sees many small chunks.
struct Trickle<'a> {
    data: &'a [u8],
    limit: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.limit).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Megabytes of barely compressible data with small spans: span boundaries fall inside and
/// across the batches of chunks the hashing thread receives, whatever the read sizes.
#[test]
fn span_digests_do_not_depend_on_how_the_layer_is_read() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let nodes: Vec<Node> = (0..6)
        .map(|i| Node::File {
            name: format!("data/file-{i}"),
            content: (0..900_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect(),
            mode: 0o644,
        })
        .collect();
    let tar = tar_bytes(&nodes);
    let layer = gzip_members(&tar, &[0.3, 0.71], &[6, 1, 9]);
    assert!(layer.len() > 5_000_000, "{} bytes", layer.len());
    let options = BuildOptions {
        span_size: 65536,
        build_tool: "t".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::default(),
    };
    let whole = build_ztoc(layer.as_slice(), &options).expect("build");
    assert!(whole.spans > 30, "{} spans", whole.spans);
    let report = verify(&whole.ztoc, layer.as_slice()).expect("verify runs");
    assert!(report.is_ok(), "verify: {:?}", report.problems);
    use sha2::Digest;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&layer)));
    assert_eq!(whole.layer_digest, digest);
    for limit in [1000, 4093, 65536, 1 << 20] {
        let trickle = Trickle {
            data: &layer,
            limit,
        };
        let trickled = build_ztoc(trickle, &options).expect("build");
        assert!(trickled.ztoc == whole.ztoc, "reads of {limit} bytes");
        assert_eq!(trickled.layer_digest, digest, "reads of {limit} bytes");
    }
}
