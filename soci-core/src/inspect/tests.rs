//! The checker against graphs built in memory with this crate's own builder: a correct v2 and v1
//! graph, then one defect at a time.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::index::{
    ConversionSource, ConvertedPlatform, ZtocLayer, annotate_image_manifest, build_converted_index,
    build_soci_index_v1, build_soci_index_v2, sha256_digest,
};
use crate::oci::{
    ANNOTATION_DOCKER_REFERENCE_TYPE, ANNOTATION_IMAGE_LAYER_DIGEST,
    ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_SOCI_INDEX_DIGEST, ANNOTATION_SPAN_SIZE,
    DOCKER_REFERENCE_TYPE_ATTESTATION, Descriptor, EMPTY_JSON_CONFIG, Index,
    MEDIA_TYPE_OCI_IMAGE_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST, Manifest, Platform,
};
use crate::{BuildOptions, Compression, MemoryBudget, build_ztoc};

const SPAN: u64 = 64 << 10;
/// Layers below this get no zTOC (the fixtures have one small layer per platform).
const MIN_LAYER: usize = 4 << 10;
const BUILD_TOOL: &str = "inspect tests";

/// Our graph sources return ready futures: polling once is enough.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// A registry in memory: manifests by digest and tag, blobs by digest.
#[derive(Default, Clone)]
struct Registry {
    manifests: BTreeMap<String, SourceManifest>,
    blobs: BTreeMap<String, Vec<u8>>,
    /// Fetching this digest fails (a broken connection).
    failing: Option<String>,
}

impl Registry {
    fn put_manifest(&mut self, media_type: &str, bytes: Vec<u8>) -> Descriptor {
        let digest = sha256_digest(&bytes);
        let descriptor = Descriptor::new(media_type, &digest, bytes.len() as i64);
        self.manifests.insert(
            digest.clone(),
            SourceManifest {
                digest,
                media_type: media_type.to_string(),
                bytes,
            },
        );
        descriptor
    }

    fn tag(&mut self, tag: &str, digest: &str) {
        let manifest = self.manifests[digest].clone();
        self.manifests.insert(tag.to_string(), manifest);
    }

    fn put_blob(&mut self, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        self.blobs.insert(digest.clone(), bytes);
        digest
    }

    fn check_failing(&self, reference: &str) -> Result<(), String> {
        match &self.failing {
            Some(failing) if failing == reference => Err(format!("connection reset ({reference})")),
            _ => Ok(()),
        }
    }
}

impl GraphSource for Registry {
    type Error = String;
    type Layer = Vec<u8>;

    async fn manifest(&self, reference: &str) -> Result<Option<SourceManifest>, String> {
        self.check_failing(reference)?;
        Ok(self.manifests.get(reference).cloned())
    }

    async fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        self.check_failing(digest)?;
        self.blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("blob {digest} unknown"))
    }

    async fn layer(&self, digest: &str) -> Result<Vec<u8>, String> {
        self.blob(digest).await
    }
}

/// A gzip tar layer of `files` files of pseudo-random text (several spans of `SPAN`).
fn gzip_layer(seed: u64, files: usize, file_size: usize) -> Vec<u8> {
    let mut builder = ::tar::Builder::new(Vec::new());
    let mut x = seed | 1;
    for n in 0..files {
        let content: Vec<u8> = (0..file_size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnopqrstuvwxyz \n"[(x % 28) as usize]
            })
            .collect();
        let mut header = ::tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                format!("dir/file-{seed}-{n}.txt"),
                &content[..],
            )
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn platform(os: &str, architecture: &str, variant: &str) -> Platform {
    Platform {
        os: os.into(),
        architecture: architecture.into(),
        variant: variant.into(),
        ..Platform::default()
    }
}

/// One pushed platform image: its manifest and where the index lists it.
struct PushedImage {
    descriptor: Descriptor,
    manifest: Manifest,
    platform: Platform,
}

/// Pushes a platform image: a config, two large layers and a small one.
fn push_image(registry: &mut Registry, seed: u64, platform: &Platform) -> PushedImage {
    let config = format!(
        r#"{{"architecture":"{}","os":"{}"}}"#,
        platform.architecture, platform.os
    );
    let config_digest = registry.put_blob(config.clone().into_bytes());
    let mut layers = Vec::new();
    for (n, (files, size)) in [(6, 40_000), (1, 100), (3, 50_000)].into_iter().enumerate() {
        let layer = gzip_layer(seed * 10 + n as u64, files, size);
        let size = layer.len() as i64;
        let digest = registry.put_blob(layer);
        layers.push(Descriptor::new(MEDIA_TYPE_OCI_LAYER_GZIP, &digest, size));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_TYPE_OCI_MANIFEST.into(),
        config: Descriptor::new(
            MEDIA_TYPE_OCI_IMAGE_CONFIG,
            &config_digest,
            config.len() as i64,
        ),
        layers: Some(layers),
        ..Manifest::default()
    };
    let mut descriptor = registry.put_manifest(MEDIA_TYPE_OCI_MANIFEST, manifest.to_go_json());
    descriptor.platform = Some(platform.clone());
    PushedImage {
        descriptor,
        manifest,
        platform: platform.clone(),
    }
}

/// Builds and pushes the zTOCs of the layers at least `MIN_LAYER` long, as the generator does.
fn push_ztocs(registry: &mut Registry, manifest: &Manifest) -> Vec<ZtocLayer> {
    let mut ztocs = Vec::new();
    for layer in manifest.layers() {
        let bytes = registry.blobs[&layer.digest].clone();
        if bytes.len() < MIN_LAYER {
            continue;
        }
        let options = BuildOptions {
            span_size: SPAN,
            build_tool: BUILD_TOOL.into(),
            compression: Compression::Gzip,
            expected_digest: Some(layer.digest.clone()),
            budget: MemoryBudget::default(),
        };
        let built = build_ztoc(&bytes[..], &options).unwrap();
        let ztoc_size = built.ztoc.len() as i64;
        let ztoc_digest = registry.put_blob(built.ztoc);
        ztocs.push(ZtocLayer {
            ztoc_digest,
            ztoc_size,
            layer_digest: layer.digest.clone(),
            layer_media_type: layer.media_type.clone(),
            span_size: SPAN,
            disable_xattrs: built.xattrs_disableable,
        });
    }
    ztocs
}

/// A two-platform image (amd64, arm64/v8), an attestation and an s390x image left out, indexed
/// as v2 and tagged `v1-soci`; the original index is tagged `v1`.
struct V2Fixture {
    registry: Registry,
    images: Vec<PushedImage>,
    attestation: Descriptor,
    left_out: Descriptor,
}

fn v2_fixture() -> V2Fixture {
    let mut registry = Registry::default();
    registry.put_blob(EMPTY_JSON_CONFIG.to_vec());
    let images = vec![
        push_image(&mut registry, 1, &platform("linux", "amd64", "")),
        push_image(&mut registry, 2, &platform("linux", "arm64", "v8")),
    ];
    let left_out = push_image(&mut registry, 3, &platform("linux", "s390x", "")).descriptor;
    let mut attestation =
        push_image(&mut registry, 4, &platform("unknown", "unknown", "")).descriptor;
    attestation.annotations.insert(
        ANNOTATION_DOCKER_REFERENCE_TYPE.into(),
        DOCKER_REFERENCE_TYPE_ATTESTATION.into(),
    );
    let mut manifests: Vec<Descriptor> = images.iter().map(|i| i.descriptor.clone()).collect();
    manifests.push(left_out.clone());
    manifests.push(attestation.clone());
    let original = Index {
        schema_version: 2,
        media_type: MEDIA_TYPE_OCI_INDEX.into(),
        manifests: Some(manifests),
        ..Index::default()
    };
    let original_descriptor = registry.put_manifest(MEDIA_TYPE_OCI_INDEX, original.to_go_json());
    registry.tag("v1", &original_descriptor.digest);

    let mut converted = Vec::new();
    for image in &images {
        let ztocs = push_ztocs(&mut registry, &image.manifest);
        let soci_index = build_soci_index_v2(&ztocs, BUILD_TOOL).unwrap();
        let soci = soci_index.to_blob();
        registry.put_manifest(&soci.media_type, soci.bytes.clone());
        let annotated_manifest = annotate_image_manifest(&image.manifest, &soci.digest);
        let blob = &annotated_manifest.blob;
        registry.put_manifest(&blob.media_type, blob.bytes.clone());
        converted.push(ConvertedPlatform {
            original_manifest_digest: image.descriptor.digest.clone(),
            annotated_manifest,
            soci_index,
            platform: image.platform.clone(),
        });
    }
    let index = build_converted_index(ConversionSource::Index(original), &converted).unwrap();
    let pushed = registry.put_manifest(&index.media_type, index.bytes);
    registry.tag("v1-soci", &pushed.digest);
    V2Fixture {
        registry,
        images,
        attestation,
        left_out,
    }
}

impl V2Fixture {
    fn inspect(&self) -> Result<GraphReport, InspectError> {
        run(inspect(
            &self.registry,
            &Root::v2("v1-soci").with_original("v1"),
        ))
    }

    fn soci_index(&self) -> Index {
        Index::from_json(&self.registry.manifests["v1-soci"].bytes).unwrap()
    }

    /// Re-pushes `v1-soci` after `change` (canonical JSON, new digest).
    fn change_index(&mut self, change: impl FnOnce(&mut Vec<Descriptor>)) {
        let mut index = self.soci_index();
        let mut manifests = index.manifests.take().unwrap();
        change(&mut manifests);
        index.manifests = Some(manifests);
        let pushed = self
            .registry
            .put_manifest(MEDIA_TYPE_OCI_INDEX, index.to_go_json());
        self.registry.tag("v1-soci", &pushed.digest);
    }

    fn soci_entry(&self, architecture: &str) -> Descriptor {
        self.soci_index()
            .manifests()
            .iter()
            .find(|d| {
                d.artifact_type == crate::oci::MEDIA_TYPE_SOCI_INDEX_V2
                    && d.platform.as_ref().unwrap().architecture == architecture
            })
            .unwrap()
            .clone()
    }

    /// Re-pushes the SOCI index of `architecture` after `change`, re-annotating everything that
    /// names it so that only `change` is wrong.
    fn change_soci_index(&mut self, architecture: &str, change: impl FnOnce(&mut Manifest)) {
        let entry = self.soci_entry(architecture);
        let mut soci = Manifest::from_json(&self.registry.manifests[&entry.digest].bytes).unwrap();
        change(&mut soci);
        let pushed = self
            .registry
            .put_manifest(MEDIA_TYPE_OCI_MANIFEST, soci.to_go_json());
        let image_digest = entry.annotations[ANNOTATION_IMAGE_MANIFEST_DIGEST].clone();
        let mut image = Manifest::from_json(&self.registry.manifests[&image_digest].bytes).unwrap();
        image
            .annotations
            .insert(ANNOTATION_SOCI_INDEX_DIGEST.into(), pushed.digest.clone());
        let annotated = self
            .registry
            .put_manifest(MEDIA_TYPE_OCI_MANIFEST, image.to_go_json());
        self.change_index(|manifests| {
            for d in manifests.iter_mut() {
                if d.digest == entry.digest {
                    d.digest = pushed.digest.clone();
                    d.size = pushed.size;
                    d.annotations.insert(
                        ANNOTATION_IMAGE_MANIFEST_DIGEST.into(),
                        annotated.digest.clone(),
                    );
                } else if d.digest == image_digest {
                    d.digest = annotated.digest.clone();
                    d.size = annotated.size;
                    d.annotations = image.annotations.clone();
                }
            }
        });
    }
}

fn problems_containing(report: &GraphReport, needle: &str) -> Vec<String> {
    report
        .problems()
        .into_iter()
        .filter(|p| p.contains(needle))
        .collect()
}

#[test]
fn a_correct_v2_graph_has_no_problem_and_reports_every_ztoc() {
    let fixture = v2_fixture();
    let report = fixture.inspect().unwrap();
    assert_eq!(report.problems(), Vec::<String>::new());
    assert!(report.is_ok());
    assert_eq!(report.version, SociIndexVersion::V2);
    assert_eq!(report.root.reference, "v1-soci");
    assert_eq!(report.root.media_type, MEDIA_TYPE_OCI_INDEX);
    assert_eq!(
        report.root.digest,
        fixture.registry.manifests["v1-soci"].digest
    );
    assert_eq!(
        report.original.as_ref().unwrap().digest,
        fixture.registry.manifests["v1"].digest
    );
    let names: Vec<String> = report.platforms.iter().map(PlatformReport::name).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        report
            .left_as_is
            .iter()
            .map(|l| (l.descriptor.digest.as_str(), l.reason))
            .collect::<Vec<_>>(),
        [
            (fixture.left_out.digest.as_str(), LeftAsIsReason::NotIndexed),
            (
                fixture.attestation.digest.as_str(),
                LeftAsIsReason::Attestation
            ),
        ]
    );
    for (platform, image) in report.platforms.iter().zip(&fixture.images) {
        assert_eq!(
            platform.image_manifest.original.as_deref(),
            Some(image.descriptor.digest.as_str())
        );
        assert_eq!(
            platform.image_manifest.config,
            image.manifest.config.clone().with_oci_config()
        );
        assert_eq!(platform.soci_index.version, SociIndexVersion::V2);
        assert!(platform.soci_index.subject.is_none());
        assert_eq!(platform.layers.len(), 3);
        let layers = image.manifest.layers();
        assert_eq!(
            platform.indexed_layers(),
            [layers[0].digest.as_str(), layers[2].digest.as_str()]
        );
        assert!(platform.layers[1].ztoc.is_none());
        for (layer, ztoc) in platform.ztocs() {
            assert_eq!(ztoc.layer_digest_annotation(), Some(layer.digest.as_str()));
            assert_eq!(ztoc.span_size_annotation(), Some(SPAN.to_string().as_str()));
            assert_eq!(ztoc.build_tool, BUILD_TOOL);
            assert!(ztoc.verify.is_ok());
            assert!(ztoc.spans > 1, "{} spans", ztoc.spans);
            assert_eq!(ztoc.verify.spans_checked, ztoc.spans);
            assert!(ztoc.entries > 0 && ztoc.verify.entries_checked > 0);
            assert_eq!(ztoc.compressed_size, layer.size as u64);
            assert!(ztoc.uncompressed_size > ztoc.compressed_size);
        }
    }
    assert_eq!(report.ztoc_count(), 4);
    assert!(report.spans_checked() >= 8);
    assert!(report.entries_checked() >= 18);
    assert!(report.platform("linux/arm64").is_some());
    assert!(report.platform("linux/arm64/v8").is_none());
}

impl Descriptor {
    /// The config descriptor as the conversion re-types it.
    fn with_oci_config(mut self) -> Self {
        self.media_type = MEDIA_TYPE_OCI_IMAGE_CONFIG.into();
        self
    }
}

#[test]
fn a_correct_v1_graph_has_no_problem() {
    let mut registry = Registry::default();
    registry.put_blob(EMPTY_JSON_CONFIG.to_vec());
    let image = push_image(&mut registry, 7, &platform("linux", "amd64", ""));
    registry.tag("latest", &image.descriptor.digest);
    let ztocs = push_ztocs(&mut registry, &image.manifest);
    let soci = build_soci_index_v1(&ztocs, &image.descriptor, BUILD_TOOL)
        .unwrap()
        .to_blob();
    registry.put_manifest(&soci.media_type, soci.bytes);
    let report = run(inspect(
        &registry,
        &Root::v1(soci.digest.clone()).with_original("latest"),
    ))
    .unwrap();
    assert_eq!(report.problems(), Vec::<String>::new());
    assert_eq!(report.version, SociIndexVersion::V1);
    assert_eq!(report.platforms.len(), 1);
    let indexed = &report.platforms[0];
    assert_eq!(indexed.name(), "v1");
    assert_eq!(indexed.soci_index.document.digest, soci.digest);
    let subject = indexed.soci_index.subject.as_ref().unwrap();
    assert_eq!(subject.digest, image.descriptor.digest);
    assert_eq!(subject.size, image.descriptor.size);
    assert_eq!(subject.media_type, MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(
        indexed.image_manifest.original.as_deref(),
        Some(image.descriptor.digest.as_str())
    );
    assert_eq!(indexed.indexed_layers().len(), 2);

    // The same SOCI index taken for a v2 root: not an OCI index.
    let as_v2 = run(inspect(&registry, &Root::v2(soci.digest.clone()))).unwrap();
    assert_eq!(
        problems_containing(&as_v2, "not an OCI index").len(),
        1,
        "{:?}",
        as_v2.problems()
    );
    let other = push_image(&mut registry, 8, &platform("linux", "amd64", ""));
    let wrong_original = run(inspect(
        &registry,
        &Root::v1(soci.digest).with_original(other.descriptor.digest.clone()),
    ))
    .unwrap();
    assert_eq!(
        problems_containing(&wrong_original, "the original image is").len(),
        1
    );
}

#[test]
fn a_v2_index_read_as_v1_is_a_version_problem() {
    let fixture = v2_fixture();
    let entry = fixture.soci_entry("amd64");
    let report = run(inspect(&fixture.registry, &Root::v1(entry.digest))).unwrap();
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a v1 index needs a subject")),
        "{problems:?}"
    );
    assert!(report.platforms.is_empty());
}

#[test]
fn a_layer_that_does_not_match_its_ztoc_fails_verification() {
    let mut fixture = v2_fixture();
    let layers = fixture.images[0].manifest.layers().to_vec();
    // The registry serves the third layer's bytes under the first layer's digest.
    let wrong = fixture.registry.blobs[&layers[2].digest].clone();
    fixture
        .registry
        .blobs
        .insert(layers[0].digest.clone(), wrong);
    let report = fixture.inspect().unwrap();
    let problems = problems_containing(&report, &layers[0].digest);
    assert!(!problems.is_empty(), "{:?}", report.problems());
    assert!(
        problems.iter().all(|p| p.starts_with("linux/amd64: zTOC ")),
        "{problems:?}"
    );
    assert!(!report.is_ok());
    let amd = report.platform("linux/amd64").unwrap();
    assert!(
        amd.problems.is_empty(),
        "only verify fails: {:?}",
        amd.problems
    );
    assert!(!amd.layers[0].ztoc.as_ref().unwrap().verify.is_ok());
    assert!(amd.layers[2].ztoc.as_ref().unwrap().verify.is_ok());
}

#[test]
fn a_non_canonical_document_is_a_problem() {
    let mut fixture = v2_fixture();
    let mut bytes = fixture.registry.manifests["v1-soci"].bytes.clone();
    bytes.insert(1, b' ');
    let pushed = fixture.registry.put_manifest(MEDIA_TYPE_OCI_INDEX, bytes);
    fixture.registry.tag("v1-soci", &pushed.digest);
    let report = fixture.inspect().unwrap();
    assert_eq!(
        report.problems(),
        ["OCI index v1-soci: the JSON is not canonical (Go re-encodes it to other bytes)"]
    );
}

#[test]
fn a_missing_soci_index_is_an_error_naming_it() {
    let mut fixture = v2_fixture();
    let entry = fixture.soci_entry("arm64");
    fixture.registry.manifests.remove(&entry.digest);
    let err = fixture.inspect().unwrap_err();
    assert!(
        matches!(&err, InspectError::Missing { what: "SOCI index", reference } if *reference == entry.digest),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("SOCI index {} is not in the registry", entry.digest)
    );
}

#[test]
fn a_fetch_failure_is_an_error_with_its_source() {
    let mut fixture = v2_fixture();
    let layer = fixture.images[1].manifest.layers()[2].digest.clone();
    fixture.registry.failing = Some(layer.clone());
    let err = fixture.inspect().unwrap_err();
    assert_eq!(err.to_string(), format!("fetching layer {layer}"));
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), format!("connection reset ({layer})"));
}

#[test]
fn a_document_that_does_not_decode_is_an_error() {
    let mut fixture = v2_fixture();
    let pushed = fixture
        .registry
        .put_manifest(MEDIA_TYPE_OCI_INDEX, br#"{"manifests":"no"}"#.to_vec());
    fixture.registry.tag("v1-soci", &pushed.digest);
    let err = fixture.inspect().unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::Decode {
                what: "OCI index",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn entries_that_do_not_pair_up_are_problems() {
    let mut fixture = v2_fixture();
    let arm = fixture.soci_entry("arm64");
    fixture.change_index(|manifests| manifests.retain(|d| d.digest != arm.digest));
    let report = fixture.inspect().unwrap();
    assert_eq!(report.platforms.len(), 1);
    let problems = report.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("linux/arm64: image manifest sha256:"));
    assert!(problems[0].ends_with("has no SOCI index entry"));

    // Two SOCI entries for one platform, the second naming another manifest.
    let mut fixture = v2_fixture();
    let amd = fixture.soci_entry("amd64");
    fixture.change_index(|manifests| {
        let mut copy = amd.clone();
        copy.annotations
            .insert(ANNOTATION_IMAGE_MANIFEST_DIGEST.into(), "sha256:00".into());
        manifests.push(copy);
    });
    let report = fixture.inspect().unwrap();
    assert_eq!(
        problems_containing(&report, "linux/amd64: two SOCI indexes").len(),
        1
    );
    assert_eq!(
        problems_containing(
            &report,
            "the SOCI index entry names image manifest sha256:00"
        )
        .len(),
        1
    );
}

#[test]
fn annotations_that_disagree_are_problems() {
    let mut fixture = v2_fixture();
    let arm = fixture.soci_entry("arm64");
    let amd = fixture.soci_entry("amd64");
    fixture.change_index(|manifests| {
        for d in manifests.iter_mut() {
            if d.annotations.get(ANNOTATION_SOCI_INDEX_DIGEST) == Some(&amd.digest) {
                d.annotations
                    .insert(ANNOTATION_SOCI_INDEX_DIGEST.into(), arm.digest.clone());
            }
        }
    });
    let report = fixture.inspect().unwrap();
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("the image manifest entry names SOCI index")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("its annotations differ from its OCI index entry's"))
    );
}

#[test]
fn an_annotated_manifest_that_changed_the_layers_matches_no_original() {
    let mut fixture = v2_fixture();
    let mut registry = fixture.registry.clone();
    // Compare with an original image whose amd64 manifest has other layers.
    let other = push_image(&mut registry, 9, &platform("linux", "amd64", ""));
    registry.tag("other", &other.descriptor.digest);
    fixture.registry = registry;
    let report = run(inspect(
        &fixture.registry,
        &Root::v2("v1-soci").with_original("other"),
    ))
    .unwrap();
    assert_eq!(
        problems_containing(&report, "match no image manifest of the original image").len(),
        2
    );
    assert!(
        report
            .platforms
            .iter()
            .all(|p| p.image_manifest.original.is_none())
    );
}

#[test]
fn ztoc_descriptor_defects_are_problems() {
    let mut fixture = v2_fixture();
    let layers = fixture.images[0].manifest.layers().to_vec();
    fixture.change_soci_index("amd64", |soci| {
        let blobs = soci.layers.as_mut().unwrap();
        blobs.swap(0, 1);
        blobs[0].annotations.remove(ANNOTATION_SPAN_SIZE);
        let mut stray = blobs[1].clone();
        stray
            .annotations
            .insert(ANNOTATION_IMAGE_LAYER_DIGEST.into(), "sha256:feed".into());
        blobs.push(stray);
        let mut duplicate = blobs[1].clone();
        duplicate.size += 1;
        blobs.push(duplicate);
    });
    let report = fixture.inspect().unwrap();
    let amd = report.platform("linux/amd64").unwrap();
    let problems = &amd.problems;
    let expect = [
        "span size annotation None is not a number".to_string(),
        "is out of image layer order".to_string(),
        "names layer sha256:feed, which is not in the image manifest".to_string(),
        format!("two zTOCs for layer {}", layers[0].digest),
    ];
    for needle in &expect {
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.contains(needle.as_str()))
                .count(),
            1,
            "{needle}: {problems:?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:?}");
    assert_eq!(amd.stray_ztocs.len(), 1);
    // Both zTOCs are still verified.
    assert_eq!(
        amd.indexed_layers(),
        [layers[0].digest.as_str(), layers[2].digest.as_str()]
    );
    assert!(report.platform("linux/arm64").unwrap().problems.is_empty());
}

#[test]
fn a_ztoc_whose_bytes_differ_from_its_descriptor_is_a_problem() {
    let mut fixture = v2_fixture();
    let ztoc_digest = fixture.images[1].manifest.layers()[0].digest.clone();
    let entry = fixture.soci_entry("arm64");
    let soci = Manifest::from_json(&fixture.registry.manifests[&entry.digest].bytes).unwrap();
    let blob = soci
        .layers()
        .iter()
        .find(|b| b.annotations[ANNOTATION_IMAGE_LAYER_DIGEST] == ztoc_digest)
        .unwrap()
        .clone();
    // Same zTOC with a byte appended: it still decodes and verifies, but is not what was indexed.
    fixture
        .registry
        .blobs
        .get_mut(&blob.digest)
        .unwrap()
        .push(0);
    let report = fixture.inspect().unwrap();
    let arm = report.platform("linux/arm64").unwrap();
    assert_eq!(arm.problems.len(), 2, "{:?}", arm.problems);
    assert!(arm.problems[0].contains("bytes, its descriptor says"));
    assert!(arm.problems[1].contains("its bytes hash to"));
}

#[test]
fn a_soci_index_with_a_wrong_config_or_subject_has_problems() {
    let mut fixture = v2_fixture();
    fixture.change_soci_index("amd64", |soci| {
        soci.config.size = 3;
        soci.subject = Some(Descriptor::new(MEDIA_TYPE_OCI_MANIFEST, "sha256:00", 1));
        soci.annotations.clear();
    });
    let report = fixture.inspect().unwrap();
    let problems = &report.platform("linux/amd64").unwrap().problems;
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].ends_with("a v2 index must have no subject"));
    assert!(problems[1].contains("lacks com.amazon.soci.build-tool-identifier"));
    assert!(problems[2].contains("(3 bytes), want the {} blob"));
}
