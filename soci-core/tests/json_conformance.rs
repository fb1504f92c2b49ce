//! JSON re-encoding conformance: every case of `tests/conformance/vectors/json/cases.json`
//! (see `tests/conformance/README.md`, "JSON re-encoding vectors"), the v2 conversion against
//! the vectors, and property tests of the Go string escaping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;
use soci_core::gojson;
use soci_core::index::{
    ConversionSource, ConvertedPlatform, JsonBlob, SociIndexVersion, ZtocLayer,
    annotate_image_manifest, build_converted_index, build_soci_index_v1, build_soci_index_v2,
    index_platform_manifests, sha256_digest, unmarshal_soci_index,
};
use soci_core::oci::{
    self, ANNOTATION_DISABLE_XATTRS, ANNOTATION_IMAGE_LAYER_DIGEST,
    ANNOTATION_IMAGE_LAYER_MEDIA_TYPE, ANNOTATION_IMAGE_MANIFEST_DIGEST,
    ANNOTATION_SOCI_INDEX_DIGEST, ANNOTATION_SPAN_SIZE, Descriptor, ImageDocument, Index, Manifest,
    OciError, Platform,
};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/conformance/vectors/json"
);

fn vector_path(parts: &[&str]) -> PathBuf {
    let mut path = PathBuf::from(VECTORS);
    path.extend(parts);
    path
}

/// Reads a vector file; a missing file fails the test (no skipping).
fn read_vector(parts: &[&str]) -> Vec<u8> {
    let path = vector_path(parts);
    std::fs::read(&path).unwrap_or_else(|err| panic!("missing vector {}: {err}", path.display()))
}

fn cases() -> Vec<Value> {
    let listing: Value = serde_json::from_slice(&read_vector(&["cases.json"])).expect("cases.json");
    listing["cases"]
        .as_array()
        .expect("cases.json has a cases array")
        .clone()
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("case field {key} missing: {value}"))
        .to_string()
}

/// Decodes then re-encodes `input` with the re-encoder of `kind`.
fn reencode(kind: &str, input: &[u8]) -> Result<Vec<u8>, OciError> {
    match kind {
        "soci-index" => unmarshal_soci_index(input).map(|index| index.to_go_json()),
        "manifest" => Manifest::from_json(input).map(|manifest| manifest.to_go_json()),
        "index" => Index::from_json(input).map(|index| index.to_go_json()),
        other => panic!("unknown vector kind {other}"),
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_json_vector_reencodes_like_go() {
    let cases = cases();
    assert!(!cases.is_empty(), "cases.json lists no case");

    // Every case folder on disk must be listed (nothing silently untested), and vice versa.
    let listed: Vec<String> = cases.iter().map(|case| text(case, "name")).collect();
    let on_disk: Vec<String> = std::fs::read_dir(VECTORS)
        .expect("vectors/json folder")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    for folder in &on_disk {
        assert!(
            listed.contains(folder),
            "vector folder {folder} is not in cases.json"
        );
    }

    let mut checked = BTreeMap::<String, usize>::new();
    for case in &cases {
        let name = text(case, "name");
        let kind = text(case, "kind");
        let input = read_vector(&[&name, "in.json"]);
        assert_eq!(
            sha256_digest(&input),
            text(case, "in_digest"),
            "{name}: in.json digest"
        );
        assert_eq!(
            input.len() as u64,
            case["in_size"].as_u64().unwrap(),
            "{name}: in size"
        );

        match text(case, "result").as_str() {
            "ok" => {
                let expected = read_vector(&[&name, "expected.json"]);
                assert_eq!(
                    sha256_digest(&expected),
                    text(case, "expected_digest"),
                    "{name}: expected.json digest"
                );
                let output = reencode(&kind, &input)
                    .unwrap_or_else(|err| panic!("{name}: decode failed: {err}"));
                assert_eq!(
                    show(&output),
                    show(&expected),
                    "{name}: re-encoding differs from Go's"
                );
                assert_eq!(output, expected, "{name}: bytes differ");
                // Go's output is a fixed point of decode + encode.
                let again = reencode(&kind, &expected)
                    .unwrap_or_else(|err| panic!("{name}: expected.json does not decode: {err}"));
                assert_eq!(
                    show(&again),
                    show(&expected),
                    "{name}: round trip not stable"
                );
                let stable = case["roundtrip_stable"].as_bool().unwrap();
                assert_eq!(input == expected, stable, "{name}: roundtrip_stable flag");
            }
            "error" => {
                let expected_error = show(&read_vector(&[&name, "expected.error.txt"]));
                let listed_error = text(case, "error");
                assert_eq!(
                    expected_error.trim_end(),
                    listed_error,
                    "{name}: error files agree"
                );
                let err = match reencode(&kind, &input) {
                    Ok(bytes) => panic!("{name}: accepted, wrote {}", show(&bytes)),
                    Err(err) => err,
                };
                assert_eq!(err.go_message(), listed_error, "{name}: error message");
                // Our own message adds where it happened.
                if let Some(json_error) = err.json_error() {
                    assert!(
                        err.to_string()
                            .contains(&format!("at byte {}", json_error.offset()))
                    );
                }
            }
            other => panic!("{name}: unknown result {other}"),
        }
        *checked.entry(kind).or_default() += 1;
    }
    assert_eq!(checked.values().sum::<usize>(), cases.len());
    for kind in ["soci-index", "manifest", "index"] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} case"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Building SOCI indexes
// ---------------------------------------------------------------------------------------------

/// The zTOC list a SOCI index vector describes, read back from its layer descriptors.
fn ztocs_of(index_vector: &str) -> Vec<ZtocLayer> {
    let index = unmarshal_soci_index(&read_vector(&[index_vector, "expected.json"])).unwrap();
    index
        .blobs
        .unwrap()
        .iter()
        // Prefetch artifacts and other non-zTOC blobs are not built by the index builder.
        .filter(|blob| blob.media_type == oci::MEDIA_TYPE_ZTOC)
        .map(|blob| ZtocLayer {
            ztoc_digest: blob.digest.clone(),
            ztoc_size: blob.size,
            layer_digest: blob.annotations[ANNOTATION_IMAGE_LAYER_DIGEST].clone(),
            layer_media_type: blob.annotations[ANNOTATION_IMAGE_LAYER_MEDIA_TYPE].clone(),
            span_size: blob.annotations[ANNOTATION_SPAN_SIZE].parse().unwrap(),
            disable_xattrs: blob.annotations.contains_key(ANNOTATION_DISABLE_XATTRS),
        })
        .collect()
}

#[test]
fn builds_v2_soci_index_byte_for_byte() {
    let built = build_soci_index_v2(&ztocs_of("soci_v2_canonical"), "AWS SOCI CLI v0.2").unwrap();
    let blob = built.to_blob();
    assert_eq!(
        show(&blob.bytes),
        show(&read_vector(&["soci_v2_canonical", "in.json"]))
    );
    assert_eq!(
        blob.digest,
        "sha256:80df912e208a97e92b0e15fd12cac8370c1e60135728eee8320fbfe77ebd115b"
    );
    assert_eq!(blob.size, 1099);
    assert_eq!(built.version, SociIndexVersion::V2);
    let descriptor = built.descriptor();
    assert_eq!(descriptor.artifact_type, oci::MEDIA_TYPE_SOCI_INDEX_V2);
    assert_eq!(descriptor.media_type, oci::MEDIA_TYPE_OCI_MANIFEST);
}

#[test]
fn builds_v1_soci_index_with_subject_byte_for_byte() {
    let subject = Descriptor::new(
        oci::MEDIA_TYPE_DOCKER_MANIFEST,
        "sha256:dafe0718a5296ebf7c78430232e3b2e36883948fbc94d428ad22c1fd584d2ee9",
        1573,
    );
    let built = build_soci_index_v1(
        &ztocs_of("soci_v1_canonical"),
        &subject,
        "AWS SOCI CLI v0.2",
    )
    .unwrap();
    assert_eq!(
        show(&built.to_go_json()),
        show(&read_vector(&["soci_v1_canonical", "in.json"]))
    );
}

#[test]
fn disable_xattrs_annotation_is_sorted_into_place() {
    let ztocs = ztocs_of("soci_v2_xattrs_prefetch");
    assert_eq!(
        ztocs.iter().map(|z| z.disable_xattrs).collect::<Vec<_>>(),
        [true, true, false]
    );
    let built = build_soci_index_v2(&ztocs, "AWS SOCI CLI v0.2").unwrap();
    let expected = show(&read_vector(&["soci_v2_xattrs_prefetch", "expected.json"]));
    // The vector also has a prefetch descriptor, which the builder never writes: compare the
    // common prefix up to the end of the third zTOC descriptor.
    let ours = show(&built.to_go_json());
    let cut = ours.find("}}],\"annotations\"").unwrap() + 2;
    assert!(
        expected.starts_with(&ours[..cut]),
        "ours: {ours}\nexpected: {expected}"
    );
}

#[test]
fn empty_index_is_an_error() {
    assert!(matches!(
        build_soci_index_v2(&[], "tool"),
        Err(OciError::EmptySociIndex)
    ));
}

#[test]
fn build_tool_identifier_is_escaped_like_go() {
    let built = build_soci_index_v2(&ztocs_of("soci_v2_canonical"), "tool <beta> & co").unwrap();
    let bytes = show(&built.to_go_json());
    assert!(bytes.ends_with(
        r#""annotations":{"com.amazon.soci.build-tool-identifier":"tool \u003cbeta\u003e \u0026 co"}}"#
    ));
}

// ---------------------------------------------------------------------------------------------
// v2 conversion
// ---------------------------------------------------------------------------------------------

const SOCI_V2_DIGEST: &str =
    "sha256:80df912e208a97e92b0e15fd12cac8370c1e60135728eee8320fbfe77ebd115b";
const ANNOTATED_DIGEST: &str =
    "sha256:f21d482a96a2cd4b0fd19fa818d61052ea4978f2a19a229439dc16ff5ff9261e";

/// The image manifest before conversion, as a Docker schema-2 manifest: the annotated vector
/// without the SOCI annotation and with Docker media types.
fn original_docker_manifest() -> Manifest {
    let mut manifest =
        Manifest::from_json(&read_vector(&["image_manifest_annotated", "expected.json"])).unwrap();
    manifest.annotations.remove(ANNOTATION_SOCI_INDEX_DIGEST);
    manifest.media_type = oci::MEDIA_TYPE_DOCKER_MANIFEST.to_string();
    manifest.config.media_type = oci::MEDIA_TYPE_DOCKER_IMAGE_CONFIG.to_string();
    manifest
}

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Platform::default()
    }
}

/// Converts the vector image for one platform: (original manifest blob, converted platform).
fn convert_vector_image(platform: Platform) -> (JsonBlob, ConvertedPlatform) {
    let original = original_docker_manifest();
    let original_blob = JsonBlob::new(oci::MEDIA_TYPE_DOCKER_MANIFEST, original.to_go_json());
    let soci_index =
        build_soci_index_v2(&ztocs_of("soci_v2_canonical"), "AWS SOCI CLI v0.2").unwrap();
    let annotated = annotate_image_manifest(&original, &soci_index.to_blob().digest);
    let converted = ConvertedPlatform {
        original_manifest_digest: original_blob.digest.clone(),
        annotated_manifest: annotated,
        soci_index,
        platform,
    };
    (original_blob, converted)
}

#[test]
fn annotated_manifest_matches_vector_and_forces_oci_types() {
    let (original_blob, converted) = convert_vector_image(amd64());
    // Decoding the Docker bytes back works like the generator's pull.
    match oci::parse_image_document(&original_blob.bytes, oci::MEDIA_TYPE_DOCKER_MANIFEST) {
        Ok(ImageDocument::Manifest { manifest, .. }) => {
            assert_eq!(manifest.layers().len(), 3);
            assert_eq!(manifest.layers()[2].size, 29_899_484);
        }
        other => panic!("unexpected {other:?}"),
    }
    let annotated = converted.annotated_manifest.blob;
    assert_eq!(
        show(&annotated.bytes),
        show(&read_vector(&["image_manifest_annotated", "expected.json"]))
    );
    assert_eq!(annotated.digest, ANNOTATED_DIGEST);
    assert_eq!(annotated.size, 896);
    assert_eq!(annotated.media_type, oci::MEDIA_TYPE_OCI_MANIFEST);
}

#[test]
fn single_manifest_becomes_new_oci_index_matching_vector_digests() {
    let (original_blob, converted) = convert_vector_image(amd64());
    let source = ConversionSource::SingleManifest {
        descriptor: original_blob.descriptor(),
        platform: amd64(),
    };
    let index_blob = build_converted_index(source, std::slice::from_ref(&converted)).unwrap();
    assert_eq!(index_blob.media_type, oci::MEDIA_TYPE_OCI_INDEX);

    // The vector's image descriptor carries only the SOCI annotation, while the conversion
    // copies ALL annotations of the annotated manifest (here also `created`), as the reference
    // does (`manifestDesc.Annotations = manifest.Annotations`). Apart from that, byte for byte:
    let mut expected =
        Index::from_json(&read_vector(&["oci_index_convert_single", "expected.json"])).unwrap();
    let image_descriptor = &mut expected.manifests.as_mut().unwrap()[0];
    image_descriptor.annotations.insert(
        "org.opencontainers.image.created".into(),
        "2024-01-01T00:00:00Z".into(),
    );
    assert_eq!(show(&index_blob.bytes), show(&expected.to_go_json()));

    let ours = Index::from_json(&index_blob.bytes).unwrap();
    let manifests = ours.manifests();
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0].digest, ANNOTATED_DIGEST);
    assert_eq!(manifests[0].size, 896);
    assert_eq!(manifests[1].digest, SOCI_V2_DIGEST);
    assert_eq!(manifests[1].size, 1099);
    assert_eq!(
        manifests[1].annotations[ANNOTATION_IMAGE_MANIFEST_DIGEST],
        ANNOTATED_DIGEST
    );
}

#[test]
fn exact_convert_single_vector_from_its_inputs() {
    // With an original manifest whose only annotation is the SOCI one the chain reproduces the
    // vector exactly: descriptor annotations = manifest annotations.
    let (original_blob, mut converted) = convert_vector_image(amd64());
    let annotated = &mut converted.annotated_manifest;
    annotated
        .manifest
        .annotations
        .retain(|key, _| key == ANNOTATION_SOCI_INDEX_DIGEST);
    // Keep the vector's digest/size for the image (the bytes are those of the vector manifest).
    let index_blob = build_converted_index(
        ConversionSource::SingleManifest {
            descriptor: original_blob.descriptor(),
            platform: amd64(),
        },
        &[converted],
    )
    .unwrap();
    let expected = read_vector(&["oci_index_convert_single", "expected.json"]);
    assert_eq!(show(&index_blob.bytes), show(&expected));
    assert_eq!(
        index_blob.digest,
        "sha256:1d9193dbad8279366c15efa288d7be06920a11a884e7e992f21dea742e08249d"
    );
}

fn platform(os: &str, architecture: &str, variant: &str) -> Platform {
    Platform {
        architecture: architecture.into(),
        os: os.into(),
        variant: variant.into(),
        ..Platform::default()
    }
}

fn manifest_descriptor(digest: &str, size: i64, platform: Platform) -> Descriptor {
    let mut descriptor = Descriptor::new(oci::MEDIA_TYPE_DOCKER_MANIFEST, digest, size);
    descriptor.platform = Some(platform);
    descriptor
}

#[test]
fn docker_manifest_list_becomes_oci_index_and_skips_attestations() {
    let (original_blob, converted) = convert_vector_image(amd64());
    let arm = sha256_digest(b"arm64 manifest");
    let mut attestation = Descriptor::new(
        oci::MEDIA_TYPE_OCI_MANIFEST,
        &sha256_digest(b"attestation"),
        839,
    );
    attestation.platform = Some(platform("unknown", "unknown", ""));
    attestation.annotations.insert(
        "vnd.docker.reference.type".into(),
        "attestation-manifest".into(),
    );
    let list = Index {
        schema_version: 2,
        media_type: oci::MEDIA_TYPE_DOCKER_MANIFEST_LIST.into(),
        manifests: Some(vec![
            manifest_descriptor(&original_blob.digest, original_blob.size, amd64()),
            manifest_descriptor(&arm, 1234, platform("linux", "arm64", "v8")),
            attestation.clone(),
        ]),
        ..Index::default()
    };
    let list_bytes = list.to_go_json();
    let ImageDocument::Index { index, .. } =
        oci::parse_image_document(&list_bytes, oci::MEDIA_TYPE_DOCKER_MANIFEST_LIST).unwrap()
    else {
        panic!("a manifest list parses as an index");
    };

    let to_index = index_platform_manifests(&index);
    let names: Vec<String> = to_index.iter().map(|m| m.platform.display_name()).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    assert_eq!(to_index[1].descriptor.digest, arm);

    let converted_index =
        build_converted_index(ConversionSource::Index(index), &[converted]).unwrap();
    let result = Index::from_json(&converted_index.bytes).unwrap();
    assert_eq!(result.media_type, oci::MEDIA_TYPE_OCI_INDEX);
    let manifests = result.manifests();
    assert_eq!(manifests.len(), 4);
    assert_eq!(manifests[0].digest, ANNOTATED_DIGEST);
    assert_eq!(manifests[0].media_type, oci::MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(manifests[0].platform, Some(amd64()));
    // Unconverted entries are untouched.
    assert_eq!(manifests[1].digest, arm);
    assert_eq!(manifests[1].media_type, oci::MEDIA_TYPE_DOCKER_MANIFEST);
    assert_eq!(manifests[2], attestation);
    assert_eq!(manifests[3].digest, SOCI_V2_DIGEST);
    assert_eq!(manifests[3].artifact_type, oci::MEDIA_TYPE_SOCI_INDEX_V2);
}

#[test]
fn multi_platform_vector_lists_platforms_without_attestation_or_soci_entries() {
    let index =
        Index::from_json(&read_vector(&["oci_index_multi_platform", "expected.json"])).unwrap();
    let names: Vec<String> = index_platform_manifests(&index)
        .iter()
        .map(|m| m.platform.display_name())
        .collect();
    // arm64/v8 normalizes to arm64 (containerd drops the default variant).
    assert_eq!(names, ["linux/amd64", "linux/arm64", "windows/amd64"]);
}

#[test]
fn reconversion_replaces_the_existing_soci_entry() {
    let (_, converted) = convert_vector_image(amd64());
    // The multi-platform vector is already converted for amd64; convert its annotated amd64
    // manifest again with a different SOCI index: the old SOCI entry must be replaced in place.
    let index =
        Index::from_json(&read_vector(&["oci_index_multi_platform", "expected.json"])).unwrap();
    let before = index.manifests().len();
    let soci_index = build_soci_index_v2(&ztocs_of("soci_v2_canonical"), "another tool").unwrap();
    let new_soci_digest = soci_index.to_blob().digest;
    let reannotated =
        annotate_image_manifest(&converted.annotated_manifest.manifest, &new_soci_digest);
    let again = ConvertedPlatform {
        original_manifest_digest: ANNOTATED_DIGEST.to_string(),
        annotated_manifest: reannotated.clone(),
        soci_index,
        platform: amd64(),
    };
    let blob = build_converted_index(ConversionSource::Index(index), &[again]).unwrap();
    let result = Index::from_json(&blob.bytes).unwrap();
    let manifests = result.manifests();
    assert_eq!(manifests.len(), before);
    assert_eq!(manifests[0].digest, reannotated.blob.digest);
    assert_eq!(
        manifests[0].annotations[ANNOTATION_SOCI_INDEX_DIGEST],
        new_soci_digest
    );
    let soci_entries: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| d.artifact_type == oci::MEDIA_TYPE_SOCI_INDEX_V2)
        .collect();
    assert_eq!(soci_entries.len(), 1);
    assert_eq!(soci_entries[0].digest, new_soci_digest);
    assert!(std::ptr::eq(soci_entries[0], &manifests[before - 1]));
    // Index-level annotations survive, escaped the Go way.
    assert!(show(&blob.bytes).contains(r#""com.example.note":"a\u0026b""#));
}

#[test]
fn several_platforms_at_once() {
    let (original_blob, amd) = convert_vector_image(amd64());
    // A second platform with its own manifest and index.
    let mut arm_manifest = original_docker_manifest();
    arm_manifest
        .annotations
        .insert("org.example.arch".into(), "arm64".into());
    let arm_original = JsonBlob::new(oci::MEDIA_TYPE_DOCKER_MANIFEST, arm_manifest.to_go_json());
    let arm_soci = build_soci_index_v2(&ztocs_of("soci_v2_xattrs_prefetch"), "tool").unwrap();
    let arm = ConvertedPlatform {
        original_manifest_digest: arm_original.digest.clone(),
        annotated_manifest: annotate_image_manifest(&arm_manifest, &arm_soci.to_blob().digest),
        soci_index: arm_soci,
        platform: platform("linux", "aarch64", ""),
    };
    let index = Index {
        schema_version: 2,
        media_type: oci::MEDIA_TYPE_OCI_INDEX.into(),
        manifests: Some(vec![
            manifest_descriptor(&original_blob.digest, original_blob.size, amd64()),
            manifest_descriptor(
                &arm_original.digest,
                arm_original.size,
                platform("linux", "arm64", ""),
            ),
        ]),
        ..Index::default()
    };
    let blob =
        build_converted_index(ConversionSource::Index(index), &[amd.clone(), arm.clone()]).unwrap();
    let result = Index::from_json(&blob.bytes).unwrap();
    let manifests = result.manifests();
    assert_eq!(manifests.len(), 4);
    assert_eq!(manifests[0].digest, amd.annotated_manifest.blob.digest);
    assert_eq!(manifests[1].digest, arm.annotated_manifest.blob.digest);
    assert_eq!(manifests[2].digest, amd.soci_index.to_blob().digest);
    assert_eq!(manifests[3].digest, arm.soci_index.to_blob().digest);
    assert_eq!(
        manifests[3].platform.as_ref().map(Platform::display_name),
        Some("linux/arm64".to_string())
    );
    assert_eq!(
        manifests[3].annotations[ANNOTATION_IMAGE_MANIFEST_DIGEST],
        arm.annotated_manifest.blob.digest
    );
}

#[test]
fn conversion_refuses_inconsistent_inputs() {
    let (original_blob, converted) = convert_vector_image(amd64());
    // Original manifest not in the index.
    let index = Index {
        schema_version: 2,
        manifests: Some(vec![manifest_descriptor(&sha256_digest(b"x"), 1, amd64())]),
        ..Index::default()
    };
    assert!(matches!(
        build_converted_index(
            ConversionSource::Index(index),
            std::slice::from_ref(&converted)
        ),
        Err(OciError::InvalidArgument { .. })
    ));
    // Annotation pointing at another SOCI index.
    let mut mismatched = converted.clone();
    mismatched.annotated_manifest =
        annotate_image_manifest(&original_docker_manifest(), &sha256_digest(b"other"));
    let source = ConversionSource::SingleManifest {
        descriptor: original_blob.descriptor(),
        platform: amd64(),
    };
    assert!(matches!(
        build_converted_index(source, &[mismatched]),
        Err(OciError::InvalidArgument { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Property tests of the encoder/decoder
// ---------------------------------------------------------------------------------------------

/// Go (1.22+) escaping, modelled on serde_json (which already writes \b \f \n \r \t and \u00XX
/// in lowercase for other controls) plus Go's HTML and line-separator escapes.
fn go_escaping_model(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn interesting_string() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        any::<char>().prop_map(String::from),
        prop::sample::select(vec![
            "<", ">", "&", "\"", "\\", "/", "\u{2028}", "\u{2029}", "\u{7f}", "\u{0}", "\u{8}",
            "\u{c}", "\n", "\r", "\t", "\u{1f}", "é", "😀", "\u{fffd}",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn strings_round_trip_and_escape_like_go(s in interesting_string()) {
        let encoded = gojson::encode_string(&s);
        prop_assert_eq!(show(&encoded), go_escaping_model(&s));
        for byte in &encoded {
            prop_assert!(*byte >= 0x20 && !matches!(*byte, b'<' | b'>' | b'&'));
        }
        prop_assert_eq!(gojson::decode_string_document(&encoded).unwrap(), s);
    }

    #[test]
    fn arbitrary_bytes_encode_to_valid_json(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        let mut encoded = Vec::new();
        gojson::write_string_bytes(&mut encoded, &bytes);
        prop_assert!(std::str::from_utf8(&encoded).is_ok());
        let decoded = gojson::decode_string_document(&encoded).unwrap();
        // Valid UTF-8 survives unchanged; otherwise Go's replacement (one U+FFFD per bad byte).
        if let Ok(valid) = std::str::from_utf8(&bytes) {
            prop_assert_eq!(decoded, valid);
        } else {
            let has_replacement = decoded.contains(char::REPLACEMENT_CHARACTER);
            prop_assert!(has_replacement);
        }
        // Raw bytes in a JSON string decode the same way as Go does: same result either way.
        let mut raw = vec![b'"'];
        raw.extend(bytes.iter().filter(|b| **b >= 0x20 && **b != b'"' && **b != b'\\'));
        raw.push(b'"');
        prop_assert!(gojson::decode_string_document(&raw).is_ok());
    }

    #[test]
    fn annotations_survive_manifest_round_trip(
        annotations in prop::collection::btree_map(interesting_string(), interesting_string(), 0..6),
        size in any::<i64>(),
    ) {
        let mut manifest = Manifest {
            schema_version: 2,
            media_type: oci::MEDIA_TYPE_OCI_MANIFEST.into(),
            ..Manifest::default()
        };
        manifest.config = Descriptor::new(oci::MEDIA_TYPE_OCI_IMAGE_CONFIG, "sha256:00", size);
        manifest.annotations = annotations;
        let bytes = manifest.to_go_json();
        let decoded = Manifest::from_json(&bytes).unwrap();
        prop_assert_eq!(&decoded, &manifest);
        prop_assert_eq!(decoded.to_go_json(), bytes);
    }

    #[test]
    fn decoder_never_panics(input in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Manifest::from_json(&input);
        let _ = Index::from_json(&input);
        let _ = unmarshal_soci_index(&input);
    }

    #[test]
    fn decoder_never_panics_on_json_like_input(
        input in "[\\[\\]{}\":,a-zA-Z0-9 .\\\\u-]{0,64}"
    ) {
        let _ = Manifest::from_json(input.as_bytes());
        let _ = Index::from_json(input.as_bytes());
        let _ = unmarshal_soci_index(input.as_bytes());
    }
}

#[test]
fn vectors_folder_is_where_the_test_expects() {
    assert!(Path::new(VECTORS).is_dir(), "{VECTORS} is missing");
}
