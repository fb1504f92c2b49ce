//! Reading the OCI structs with Go's decoding rules: fields matched case-insensitively, unknown
//! fields skipped, duplicate keys merged, `null` leaving a field untouched.

use std::collections::BTreeMap;

use super::{Descriptor, Index, Manifest, OciError, Platform};
use crate::gojson::{self, Decoder, GoSlice, GoStruct, JsonError};

/// Validates the whole document (Go's checkValid), then runs the typed decode.
pub(crate) fn decode_document(
    bytes: &[u8],
    what: &'static str,
    decode: impl FnOnce(&mut Decoder<'_>) -> Result<(), JsonError>,
) -> Result<(), OciError> {
    let wrap = |source| OciError::Json { what, source };
    gojson::validate(bytes).map_err(wrap)?;
    let mut decoder = Decoder::new(bytes);
    decode(&mut decoder).map_err(wrap)?;
    decoder.finish().map_err(wrap)
}

const PLATFORM_STRUCT: GoStruct = GoStruct {
    name: "Platform",
    go_type: "v1.Platform",
    fields: &["architecture", "os", "os.version", "os.features", "variant"],
};

const DESCRIPTOR_STRUCT: GoStruct = GoStruct {
    name: "Descriptor",
    go_type: "v1.Descriptor",
    fields: &[
        "mediaType",
        "digest",
        "size",
        "urls",
        "annotations",
        "data",
        "platform",
        "artifactType",
    ],
};

const MANIFEST_STRUCT: GoStruct = GoStruct {
    name: "Manifest",
    go_type: "v1.Manifest",
    fields: &[
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "subject",
        "annotations",
    ],
};

const INDEX_STRUCT: GoStruct = GoStruct {
    name: "Index",
    go_type: "v1.Index",
    fields: &[
        "schemaVersion",
        "mediaType",
        "artifactType",
        "manifests",
        "subject",
        "annotations",
    ],
};

pub(crate) fn decode_platform(
    decoder: &mut Decoder<'_>,
    platform: &mut Platform,
) -> Result<(), JsonError> {
    let mut os_features = GoSlice::from_vec(std::mem::take(&mut platform.os_features));
    let result = decoder.decode_struct(&PLATFORM_STRUCT, |decoder, field| match field {
        0 => decoder.decode_string(&mut platform.architecture),
        1 => decoder.decode_string(&mut platform.os),
        2 => decoder.decode_string(&mut platform.os_version),
        3 => decoder.decode_string_slice(&mut os_features),
        _ => decoder.decode_string(&mut platform.variant),
    });
    platform.os_features = os_features.into_vec();
    result.map(|_| ())
}

pub(crate) fn decode_descriptor(
    decoder: &mut Decoder<'_>,
    descriptor: &mut Descriptor,
) -> Result<(), JsonError> {
    let mut urls = GoSlice::from_vec(std::mem::take(&mut descriptor.urls));
    let mut data = GoSlice::from_vec(std::mem::take(&mut descriptor.data));
    let result = decoder.decode_struct(&DESCRIPTOR_STRUCT, |decoder, field| match field {
        0 => decoder.decode_string(&mut descriptor.media_type),
        1 => decoder.decode_string(&mut descriptor.digest),
        2 => decoder.decode_int(&mut descriptor.size, "int64"),
        3 => decoder.decode_string_slice(&mut urls),
        4 => decoder.decode_string_map(&mut descriptor.annotations),
        5 => decoder.decode_bytes(&mut data),
        6 => decoder.decode_optional(&mut descriptor.platform, decode_platform),
        _ => decoder.decode_string(&mut descriptor.artifact_type),
    });
    descriptor.urls = urls.into_vec();
    descriptor.data = data.into_vec();
    result.map(|_| ())
}

fn decode_descriptor_slice(
    decoder: &mut Decoder<'_>,
    slice: &mut GoSlice<Descriptor>,
) -> Result<(), JsonError> {
    decoder.decode_slice(slice, "[]v1.Descriptor", decode_descriptor)
}

fn decode_manifest(decoder: &mut Decoder<'_>, manifest: &mut Manifest) -> Result<(), JsonError> {
    let mut layers = GoSlice::from_option(manifest.layers.take());
    let result = decoder.decode_struct(&MANIFEST_STRUCT, |decoder, field| match field {
        0 => decoder.decode_int(&mut manifest.schema_version, "int"),
        1 => decoder.decode_string(&mut manifest.media_type),
        2 => decoder.decode_string(&mut manifest.artifact_type),
        3 => decode_descriptor(decoder, &mut manifest.config),
        4 => decode_descriptor_slice(decoder, &mut layers),
        5 => decoder.decode_optional(&mut manifest.subject, decode_descriptor),
        _ => decoder.decode_string_map(&mut manifest.annotations),
    });
    manifest.layers = layers.into_option();
    result.map(|_| ())
}

fn decode_index(decoder: &mut Decoder<'_>, index: &mut Index) -> Result<(), JsonError> {
    let mut manifests = GoSlice::from_option(index.manifests.take());
    let result = decoder.decode_struct(&INDEX_STRUCT, |decoder, field| match field {
        0 => decoder.decode_int(&mut index.schema_version, "int"),
        1 => decoder.decode_string(&mut index.media_type),
        2 => decoder.decode_string(&mut index.artifact_type),
        3 => decode_descriptor_slice(decoder, &mut manifests),
        4 => decoder.decode_optional(&mut index.subject, decode_descriptor),
        _ => decoder.decode_string_map(&mut index.annotations),
    });
    index.manifests = manifests.into_option();
    result.map(|_| ())
}

/// The soci package's own `soci.Index` struct, which `soci.UnmarshalIndex` decodes into BEFORE
/// the manifest: its fields are type-checked too, so a bad `blobs` entry is an error even though
/// the re-encoding never writes `blobs`.
pub(crate) fn check_soci_index_struct(decoder: &mut Decoder<'_>) -> Result<(), JsonError> {
    const SOCI_INDEX_STRUCT: GoStruct = GoStruct {
        name: "Index",
        go_type: "soci.Index",
        fields: &[
            "mediaType",
            "artifactType",
            "blobs",
            "subject",
            "annotations",
        ],
    };
    let mut media_type = String::new();
    let mut artifact_type = String::new();
    let mut blobs: GoSlice<Descriptor> = GoSlice::default();
    let mut subject: Option<Descriptor> = None;
    let mut annotations = BTreeMap::new();
    decoder
        .decode_struct(&SOCI_INDEX_STRUCT, |decoder, field| match field {
            0 => decoder.decode_string(&mut media_type),
            1 => decoder.decode_string(&mut artifact_type),
            2 => decode_descriptor_slice(decoder, &mut blobs),
            3 => decoder.decode_optional(&mut subject, decode_descriptor),
            _ => decoder.decode_string_map(&mut annotations),
        })
        .map(|_| ())
}

impl Manifest {
    /// Go's `json.Unmarshal` into a zero `ocispec.Manifest`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        let mut manifest = Manifest::default();
        decode_document(bytes, "image manifest", |decoder| {
            decode_manifest(decoder, &mut manifest)
        })?;
        Ok(manifest)
    }
}

impl Index {
    /// Go's `json.Unmarshal` into a zero `ocispec.Index`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        let mut index = Index::default();
        decode_document(bytes, "image index", |decoder| {
            decode_index(decoder, &mut index)
        })?;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_field_like_go() {
        let err = Manifest::from_json(br#"{"layers":[{"size":"1"}]}"#).unwrap_err();
        assert_eq!(
            err.go_message(),
            "json: cannot unmarshal string into Go struct field Descriptor.layers.size of type int64"
        );
        let err = Manifest::from_json(b"[]").unwrap_err();
        assert_eq!(
            err.go_message(),
            "json: cannot unmarshal array into Go value of type v1.Manifest"
        );
        let err = Index::from_json(br#"{"manifests":{}}"#).unwrap_err();
        assert_eq!(
            err.go_message(),
            "json: cannot unmarshal object into Go struct field Index.manifests of type []v1.Descriptor"
        );
        let err = Manifest::from_json(br#"{"schemaVersion":1e0}"#).unwrap_err();
        assert_eq!(
            err.go_message(),
            "json: cannot unmarshal number 1e0 into Go struct field Manifest.schemaVersion of type int"
        );
        assert!(err.json_error().unwrap().offset() > 0);
    }

    #[test]
    fn null_handling_like_go() {
        let manifest = Manifest::from_json(
            br#"{"schemaVersion":null,"config":null,"layers":[{}],"layers":null,"annotations":{"a":null},"subject":{"size":3},"subject":null}"#,
        )
        .unwrap();
        assert_eq!(manifest.layers, None);
        assert_eq!(manifest.subject, None);
        assert_eq!(manifest.annotations.get("a").map(String::as_str), Some(""));
        assert_eq!(
            manifest.to_go_json(),
            br#"{"schemaVersion":0,"config":{"mediaType":"","digest":"","size":0},"layers":null,"annotations":{"a":""}}"#
        );
    }

    #[test]
    fn duplicate_struct_keys_merge() {
        let manifest =
            Manifest::from_json(br#"{"config":{"digest":"d","size":1},"config":{"size":2}}"#)
                .unwrap();
        assert_eq!(manifest.config.digest, "d");
        assert_eq!(manifest.config.size, 2);
        let merged = Manifest::from_json(
            br#"{"layers":[{"digest":"a","size":1},{"digest":"b"}],"layers":[{"size":9}]}"#,
        )
        .unwrap();
        assert_eq!(merged.layers().len(), 1);
        assert_eq!(merged.layers()[0].digest, "a");
        assert_eq!(merged.layers()[0].size, 9);
    }
}
