//! OCI image-spec v1.1.1 structs (`Descriptor`, `Platform`, `Manifest`, `Index`) that read and
//! write JSON exactly as Go's `encoding/json` does with the `ocispec` types: fields in Go struct
//! order, Go `omitempty` rules, unknown fields dropped, Go decoding quirks (see [`crate::gojson`]).
//!
//! Field order and omission (format doc section 6):
//! - descriptor: `mediaType` (always), `digest`, `size` (always), [`urls`], [`annotations`],
//!   [`data`], [`platform`], [`artifactType`]
//! - platform: `architecture`, `os` (always), [`os.version`], [`os.features`], [`variant`].
//!   image-spec v1.1.1 has no `features` field (removed after v1.0.0): Go drops it, so do we.
//! - manifest: `schemaVersion`, [`mediaType`], [`artifactType`], `config`, `layers` (`null` when
//!   absent), [`subject`], [`annotations`]
//! - index: `schemaVersion`, [`mediaType`], [`artifactType`], `manifests` (`null` when absent),
//!   [`subject`], [`annotations`]

use std::collections::BTreeMap;

use crate::gojson::{self, Decoder, GoSlice, GoStruct, JsonError, ObjectWriter};

/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 image manifest.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const MEDIA_TYPE_OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const MEDIA_TYPE_DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI uncompressed tar layer.
pub const MEDIA_TYPE_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip tar layer.
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd tar layer (SOCI cannot index it).
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker gzip tar layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed tar layer.
pub const MEDIA_TYPE_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// SOCI index v1: config media type of the SOCI index manifest (uses `subject`).
pub const MEDIA_TYPE_SOCI_INDEX_V1: &str = "application/vnd.amazon.soci.index.v1+json";
/// SOCI index v2: config media type and descriptor `artifactType` (no `subject`).
pub const MEDIA_TYPE_SOCI_INDEX_V2: &str = "application/vnd.amazon.soci.index.v2+json";
/// Media type of a zTOC blob in a SOCI index.
pub const MEDIA_TYPE_ZTOC: &str = "application/octet-stream";

/// On a zTOC descriptor: digest of the image layer it indexes.
pub const ANNOTATION_IMAGE_LAYER_DIGEST: &str = "com.amazon.soci.image-layer-digest";
/// On a zTOC descriptor: media type of the image layer (capital T, as the reference writes it).
pub const ANNOTATION_IMAGE_LAYER_MEDIA_TYPE: &str = "com.amazon.soci.image-layer-mediaType";
/// On a zTOC descriptor: span size used to build the zTOC (decimal).
pub const ANNOTATION_SPAN_SIZE: &str = "com.amazon.soci.span-size";
/// On a zTOC descriptor: `"true"` when the layer has no xattrs and no opaque whiteouts.
pub const ANNOTATION_DISABLE_XATTRS: &str = "com.amazon.soci.disable-xattrs";
/// On the SOCI index manifest: the build tool identifier.
pub const ANNOTATION_BUILD_TOOL_IDENTIFIER: &str = "com.amazon.soci.build-tool-identifier";
/// On an image manifest (v2): digest of its SOCI index.
pub const ANNOTATION_SOCI_INDEX_DIGEST: &str = "com.amazon.soci.index-digest";
/// On a SOCI index descriptor in an OCI index (v2): digest of the annotated image manifest.
pub const ANNOTATION_IMAGE_MANIFEST_DIGEST: &str = "com.amazon.soci.image-manifest-digest";
/// BuildKit attestation descriptors carry `vnd.docker.reference.type: attestation-manifest`.
pub const ANNOTATION_DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Value of [`ANNOTATION_DOCKER_REFERENCE_TYPE`] on attestation manifests.
pub const DOCKER_REFERENCE_TYPE_ATTESTATION: &str = "attestation-manifest";

/// The 2-byte config blob of every SOCI index manifest.
pub const EMPTY_JSON_CONFIG: &[u8] = b"{}";
/// sha256 of [`EMPTY_JSON_CONFIG`].
pub const EMPTY_JSON_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Errors of the OCI / SOCI index layer.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The bytes are not what Go's `json.Unmarshal` would accept for this type.
    #[error("decoding {what}: {source}")]
    Json {
        /// What was being decoded (`image manifest`, `OCI index`, `SOCI index`, ...).
        what: &'static str,
        #[source]
        source: JsonError,
    },
    /// A SOCI index whose `config.mediaType` is neither v1 nor v2 (the reference's message).
    #[error("unknown index version: {0}")]
    UnknownSociIndexVersion(String),
    /// The registry's Content-Type (or the document's mediaType) is not an image manifest/index.
    #[error("unsupported media type {media_type:?}: not an image manifest, index or manifest list")]
    UnsupportedMediaType {
        /// The media type found.
        media_type: String,
    },
    /// The document's own `mediaType` contradicts the Content-Type it was served with.
    #[error("media type mismatch: served as {served:?} but the document says {declared:?}")]
    MediaTypeMismatch {
        /// Content-Type from the registry.
        served: String,
        /// `mediaType` field of the document.
        declared: String,
    },
    /// No zTOC was given: the reference reports an empty index and pushes nothing.
    #[error("empty SOCI index: no layer was indexed")]
    EmptySociIndex,
    /// A caller-supplied value is unusable (which value, and why).
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// The argument or field at fault.
        what: &'static str,
        /// Why it is unusable.
        detail: String,
    },
}

impl OciError {
    /// The Go decoder error, when this is one (for comparing with the reference's messages).
    pub fn json_error(&self) -> Option<&JsonError> {
        match self {
            OciError::Json { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The text the reference (Go) prints for this error, when it has one.
    pub fn go_message(&self) -> String {
        match self {
            OciError::Json { source, .. } => source.go_message().to_string(),
            other => other.to_string(),
        }
    }
}

/// `ocispec.Platform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `architecture` (always written).
    pub architecture: String,
    /// `os` (always written).
    pub os: String,
    /// `os.version` (omitempty).
    pub os_version: String,
    /// `os.features` (omitempty).
    pub os_features: Vec<String>,
    /// `variant` (omitempty).
    pub variant: String,
}

/// `ocispec.Descriptor` (image-spec v1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `mediaType` (always written, even empty).
    pub media_type: String,
    /// `digest` (always written).
    pub digest: String,
    /// `size` (always written).
    pub size: i64,
    /// `urls` (omitempty).
    pub urls: Vec<String>,
    /// `annotations` (omitempty, keys sorted bytewise).
    pub annotations: BTreeMap<String, String>,
    /// `data` (omitempty, base64).
    pub data: Vec<u8>,
    /// `platform` (omitted when `None`).
    pub platform: Option<Platform>,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
}

/// `ocispec.Manifest` (image-spec v1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `schemaVersion` (always written).
    pub schema_version: i64,
    /// `mediaType` (omitempty).
    pub media_type: String,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
    /// `config` (always written).
    pub config: Descriptor,
    /// `layers`: `None` is Go's nil slice, written as `null`.
    pub layers: Option<Vec<Descriptor>>,
    /// `subject` (omitted when `None`).
    pub subject: Option<Descriptor>,
    /// `annotations` (omitempty).
    pub annotations: BTreeMap<String, String>,
}

/// `ocispec.Index` (image-spec v1.1.1); also what a Docker manifest list decodes into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// `schemaVersion` (always written).
    pub schema_version: i64,
    /// `mediaType` (omitempty).
    pub media_type: String,
    /// `artifactType` (omitempty).
    pub artifact_type: String,
    /// `manifests`: `None` is Go's nil slice, written as `null`.
    pub manifests: Option<Vec<Descriptor>>,
    /// `subject` (omitted when `None`).
    pub subject: Option<Descriptor>,
    /// `annotations` (omitempty).
    pub annotations: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

impl Platform {
    /// Go's `json.Marshal` of this platform.
    pub fn write_go_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.string("architecture", &self.architecture);
        object.string("os", &self.os);
        object.string_omitempty("os.version", &self.os_version);
        object.strings_omitempty("os.features", &self.os_features);
        object.string_omitempty("variant", &self.variant);
        object.finish();
    }

    /// `os/architecture[/variant]`, as containerd formats a platform (for logs).
    pub fn display_name(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.architecture)
        } else {
            format!("{}/{}/{}", self.os, self.architecture, self.variant)
        }
    }
}

impl Descriptor {
    /// Go's `json.Marshal` of this descriptor.
    pub fn write_go_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::new(out);
        object.string("mediaType", &self.media_type);
        object.string("digest", &self.digest);
        object.int("size", self.size);
        object.strings_omitempty("urls", &self.urls);
        object.string_map_omitempty("annotations", &self.annotations);
        object.bytes_omitempty("data", &self.data);
        if let Some(platform) = &self.platform {
            platform.write_go_json(object.key("platform"));
        }
        object.string_omitempty("artifactType", &self.artifact_type);
        object.finish();
    }

    /// Go's `json.Marshal` of this descriptor, as bytes.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_go_json(&mut out);
        out
    }

    /// A plain `{mediaType, digest, size}` descriptor.
    pub fn new(media_type: &str, digest: &str, size: i64) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            ..Self::default()
        }
    }
}

fn write_descriptor_list(out: &mut Vec<u8>, list: Option<&[Descriptor]>) {
    match list {
        None => out.extend_from_slice(b"null"),
        Some(descriptors) => {
            out.push(b'[');
            for (position, descriptor) in descriptors.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                descriptor.write_go_json(out);
            }
            out.push(b']');
        }
    }
}

impl Manifest {
    /// Go's `json.Marshal(ocispec.Manifest)`: compact, no trailing newline.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let mut object = ObjectWriter::new(&mut out);
        object.int("schemaVersion", self.schema_version);
        object.string_omitempty("mediaType", &self.media_type);
        object.string_omitempty("artifactType", &self.artifact_type);
        self.config.write_go_json(object.key("config"));
        write_descriptor_list(object.key("layers"), self.layers.as_deref());
        if let Some(subject) = &self.subject {
            subject.write_go_json(object.key("subject"));
        }
        object.string_map_omitempty("annotations", &self.annotations);
        object.finish();
        out
    }

    /// Go's `json.Unmarshal` into a zero `ocispec.Manifest`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        let mut manifest = Manifest::default();
        decode_document(bytes, "image manifest", |decoder| {
            decode_manifest(decoder, &mut manifest)
        })?;
        Ok(manifest)
    }

    /// The layers (`null` reads as none).
    pub fn layers(&self) -> &[Descriptor] {
        self.layers.as_deref().unwrap_or_default()
    }
}

impl Index {
    /// Go's `json.Marshal(ocispec.Index)`: compact, no trailing newline.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let mut object = ObjectWriter::new(&mut out);
        object.int("schemaVersion", self.schema_version);
        object.string_omitempty("mediaType", &self.media_type);
        object.string_omitempty("artifactType", &self.artifact_type);
        write_descriptor_list(object.key("manifests"), self.manifests.as_deref());
        if let Some(subject) = &self.subject {
            subject.write_go_json(object.key("subject"));
        }
        object.string_map_omitempty("annotations", &self.annotations);
        object.finish();
        out
    }

    /// Go's `json.Unmarshal` into a zero `ocispec.Index`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        let mut index = Index::default();
        decode_document(bytes, "image index", |decoder| {
            decode_index(decoder, &mut index)
        })?;
        Ok(index)
    }

    /// The manifest descriptors (`null` reads as none).
    pub fn manifests(&self) -> &[Descriptor] {
        self.manifests.as_deref().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

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

/// True for the Docker and OCI image manifest media types.
pub fn is_image_manifest_media_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// True for the OCI index and Docker manifest list media types.
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

/// What a registry returned for an image reference.
// One value per request: boxing the manifest would only make matching clumsier for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDocument {
    /// A single image manifest (OCI or Docker), with the media type it was served as.
    Manifest {
        /// The Content-Type (or the document's `mediaType` when the Content-Type was generic).
        media_type: String,
        /// The decoded manifest.
        manifest: Manifest,
    },
    /// An OCI index or Docker manifest list.
    Index {
        /// The Content-Type (or the document's `mediaType`).
        media_type: String,
        /// The decoded index.
        index: Index,
    },
}

/// Decodes what a registry served for an image reference (`bytes` + its `Content-Type`).
///
/// A generic or missing Content-Type (`""`, `application/json`) falls back to the document's own
/// `mediaType`. A document whose `mediaType` contradicts the Content-Type is refused, as the
/// reference's `ociutil.ValidateMediaType` does. Anything that is not an image manifest, index or
/// manifest list is [`OciError::UnsupportedMediaType`] (the generator reports "not an image").
pub fn parse_image_document(bytes: &[u8], content_type: &str) -> Result<ImageDocument, OciError> {
    // Content-Type may carry parameters ("...; charset=utf-8").
    let served = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let declared = declared_media_type(bytes)?;
    let media_type = if served.is_empty() || served == "application/json" {
        declared.clone()
    } else {
        if !declared.is_empty() && declared != served {
            return Err(OciError::MediaTypeMismatch { served, declared });
        }
        served
    };
    if is_image_manifest_media_type(&media_type) {
        let manifest = Manifest::from_json(bytes)?;
        Ok(ImageDocument::Manifest {
            media_type,
            manifest,
        })
    } else if is_index_media_type(&media_type) {
        let index = Index::from_json(bytes)?;
        Ok(ImageDocument::Index { media_type, index })
    } else {
        Err(OciError::UnsupportedMediaType { media_type })
    }
}

/// The top-level `mediaType` of a JSON document, decoded with Go's rules ("" when absent).
fn declared_media_type(bytes: &[u8]) -> Result<String, OciError> {
    const MEDIA_TYPE_ONLY: GoStruct = GoStruct {
        name: "mediaTypeOnly",
        go_type: "struct { MediaType string }",
        fields: &["mediaType"],
    };
    let mut media_type = String::new();
    decode_document(bytes, "document mediaType", |decoder| {
        decoder
            .decode_struct(&MEDIA_TYPE_ONLY, |decoder, _| {
                decoder.decode_string(&mut media_type)
            })
            .map(|_| ())
    })?;
    Ok(media_type)
}

/// Normalizes a platform as containerd's `platforms.Normalize` does (OS lower-cased,
/// architecture aliases such as `x86_64`/`aarch64` mapped, redundant variants dropped), so
/// platforms from image configs and from index descriptors compare equal.
pub fn normalize_platform(platform: &Platform) -> Platform {
    let mut normalized = platform.clone();
    normalized.os = platform.os.to_lowercase();
    let arch = platform.architecture.to_lowercase();
    let variant = platform.variant.to_lowercase();
    let (architecture, variant) = match arch.as_str() {
        "i386" => ("386".to_string(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".to_string(), variant)
        }
        "aarch64" | "arm64" => {
            let variant = if matches!(variant.as_str(), "8" | "v8" | "v8.0") {
                String::new()
            } else {
                variant
            };
            ("arm64".to_string(), variant)
        }
        "armhf" => ("arm".to_string(), "v7".to_string()),
        "armel" => ("arm".to_string(), "v6".to_string()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".to_string(), variant)
        }
        _ => (arch, variant),
    };
    normalized.architecture = architecture;
    normalized.variant = variant;
    normalized
}

/// Reads the platform of a single-platform image from its config blob (`architecture`, `os`,
/// `variant`, `os.version`, `os.features`), normalized. The reference does the same
/// (`images.Platforms`) to give a single manifest a platform in the new OCI index.
pub fn platform_from_image_config(config_bytes: &[u8]) -> Result<Platform, OciError> {
    const IMAGE_CONFIG_STRUCT: GoStruct = GoStruct {
        name: "Image",
        go_type: "v1.Image",
        fields: &["architecture", "os", "os.version", "os.features", "variant"],
    };
    let mut platform = Platform::default();
    let mut os_features: GoSlice<String> = GoSlice::default();
    decode_document(config_bytes, "image config", |decoder| {
        decoder
            .decode_struct(&IMAGE_CONFIG_STRUCT, |decoder, field| match field {
                0 => decoder.decode_string(&mut platform.architecture),
                1 => decoder.decode_string(&mut platform.os),
                2 => decoder.decode_string(&mut platform.os_version),
                3 => decoder.decode_string_slice(&mut os_features),
                _ => decoder.decode_string(&mut platform.variant),
            })
            .map(|_| ())
    })?;
    platform.os_features = os_features.into_vec();
    if platform.os.is_empty() || platform.architecture.is_empty() {
        return Err(OciError::InvalidArgument {
            what: "image config",
            detail: "no os/architecture".to_string(),
        });
    }
    Ok(normalize_platform(&platform))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_field_order_and_omitempty() {
        let mut descriptor = Descriptor::new("", "sha256:00", 0);
        assert_eq!(
            descriptor.to_go_json(),
            br#"{"mediaType":"","digest":"sha256:00","size":0}"#
        );
        descriptor.platform = Some(Platform::default());
        descriptor.artifact_type = "a".into();
        descriptor.data = b"{}".to_vec();
        descriptor.urls = vec!["u".into()];
        descriptor.annotations.insert("b".into(), "2".into());
        descriptor.annotations.insert("B".into(), "1".into());
        assert_eq!(
            String::from_utf8(descriptor.to_go_json()).unwrap(),
            r#"{"mediaType":"","digest":"sha256:00","size":0,"urls":["u"],"annotations":{"B":"1","b":"2"},"data":"e30=","platform":{"architecture":"","os":""},"artifactType":"a"}"#
        );
    }

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

    #[test]
    fn parse_image_document_checks_media_types() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        assert!(matches!(
            parse_image_document(docker, MEDIA_TYPE_DOCKER_MANIFEST),
            Ok(ImageDocument::Manifest { .. })
        ));
        assert!(matches!(
            parse_image_document(docker, "application/json"),
            Ok(ImageDocument::Manifest { .. })
        ));
        assert!(matches!(
            parse_image_document(docker, MEDIA_TYPE_OCI_INDEX),
            Err(OciError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse_image_document(br#"{"schemaVersion":2}"#, "application/vnd.example"),
            Err(OciError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse_image_document(b"{", MEDIA_TYPE_OCI_INDEX),
            Err(OciError::Json { .. })
        ));
    }

    #[test]
    fn platform_from_config_normalizes() {
        let platform = platform_from_image_config(
            br#"{"architecture":"aarch64","os":"Linux","variant":"v8","rootfs":{}}"#,
        )
        .unwrap();
        assert_eq!(platform.architecture, "arm64");
        assert_eq!(platform.os, "linux");
        assert_eq!(platform.variant, "");
        assert!(platform_from_image_config(b"{}").is_err());
    }
}
