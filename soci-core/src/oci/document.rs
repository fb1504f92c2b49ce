//! What a registry returns for an image reference (manifest or index, by media type) and the
//! platform of an image.

use super::decode::decode_document;
use super::{
    Index, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST, Manifest, OciError, Platform,
};
use crate::gojson::{GoSlice, GoStruct};

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
