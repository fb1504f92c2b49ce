//! SOCI index manifests and the v2 conversion, serialized byte for byte as Go's
//! `encoding/json` marshals image-spec v1.1.1 types (format doc sections 6 and 7).
//!
//! soci-core's `gojson`/`oci`/`index` modules were still being written when this crate was;
//! this module is the local stand-in (same rules: struct field order, `omitempty` semantics,
//! maps sorted bytewise, Go string escaping). The integration tests check its output against
//! soci-core's re-encoding once that lands.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::config::IndexVersion;
use crate::media;

/// The 2-byte config blob of every SOCI index.
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const ANNOTATION_BUILD_TOOL: &str = "com.amazon.soci.build-tool-identifier";
pub const ANNOTATION_LAYER_DIGEST: &str = "com.amazon.soci.image-layer-digest";
pub const ANNOTATION_LAYER_MEDIA_TYPE: &str = "com.amazon.soci.image-layer-mediaType";
pub const ANNOTATION_SPAN_SIZE: &str = "com.amazon.soci.span-size";
pub const ANNOTATION_DISABLE_XATTRS: &str = "com.amazon.soci.disable-xattrs";

/// A JSON document that does not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct ConvertError {
    pub what: String,
    pub detail: String,
}

/// image-spec `Platform`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub variant: Option<String>,
}

/// image-spec `Descriptor`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Base64, as on the wire.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

/// image-spec `Manifest`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// image-spec `Index`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Go `encoding/json` string escaping (HTML-safe, U+2028/2029 escaped).
pub fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn key(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    go_string(out, name);
    out.push(':');
}

fn string_map(out: &mut String, map: &BTreeMap<String, String>) {
    out.push('{');
    let mut first = true;
    // BTreeMap<String> iterates in bytewise order, as Go sorts map keys.
    for (k, v) in map {
        key(out, &mut first, k);
        go_string(out, v);
    }
    out.push('}');
}

fn string_list(out: &mut String, list: &[String]) {
    out.push('[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_string(out, s);
    }
    out.push(']');
}

fn platform(out: &mut String, p: &Platform) {
    out.push('{');
    let mut first = true;
    key(out, &mut first, "architecture");
    go_string(out, &p.architecture);
    key(out, &mut first, "os");
    go_string(out, &p.os);
    if let Some(v) = p.os_version.as_deref().filter(|v| !v.is_empty()) {
        key(out, &mut first, "os.version");
        go_string(out, v);
    }
    if let Some(f) = p.os_features.as_deref().filter(|f| !f.is_empty()) {
        key(out, &mut first, "os.features");
        string_list(out, f);
    }
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        key(out, &mut first, "variant");
        go_string(out, v);
    }
    out.push('}');
}

fn descriptor(out: &mut String, d: &Descriptor) {
    out.push('{');
    let mut first = true;
    key(out, &mut first, "mediaType");
    go_string(out, &d.media_type);
    key(out, &mut first, "digest");
    go_string(out, &d.digest);
    key(out, &mut first, "size");
    let _ = write!(out, "{}", d.size);
    if let Some(urls) = d.urls.as_deref().filter(|u| !u.is_empty()) {
        key(out, &mut first, "urls");
        string_list(out, urls);
    }
    if let Some(a) = d.annotations.as_ref().filter(|a| !a.is_empty()) {
        key(out, &mut first, "annotations");
        string_map(out, a);
    }
    if let Some(data) = d.data.as_deref().filter(|d| !d.is_empty()) {
        key(out, &mut first, "data");
        go_string(out, data);
    }
    if let Some(p) = &d.platform {
        key(out, &mut first, "platform");
        platform(out, p);
    }
    if let Some(t) = d.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        key(out, &mut first, "artifactType");
        go_string(out, t);
    }
    out.push('}');
}

fn descriptor_list(out: &mut String, list: Option<&[Descriptor]>) {
    match list {
        None => out.push_str("null"),
        Some(list) => {
            out.push('[');
            for (i, d) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                descriptor(out, d);
            }
            out.push(']');
        }
    }
}

/// `json.Marshal(manifest)`.
pub fn marshal_manifest(m: &Manifest) -> Vec<u8> {
    let mut out = String::with_capacity(1024);
    out.push('{');
    let mut first = true;
    key(&mut out, &mut first, "schemaVersion");
    let _ = write!(out, "{}", m.schema_version);
    if let Some(t) = m.media_type.as_deref().filter(|t| !t.is_empty()) {
        key(&mut out, &mut first, "mediaType");
        go_string(&mut out, t);
    }
    if let Some(t) = m.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        key(&mut out, &mut first, "artifactType");
        go_string(&mut out, t);
    }
    key(&mut out, &mut first, "config");
    descriptor(&mut out, &m.config);
    key(&mut out, &mut first, "layers");
    descriptor_list(&mut out, m.layers.as_deref());
    if let Some(s) = &m.subject {
        key(&mut out, &mut first, "subject");
        descriptor(&mut out, s);
    }
    if let Some(a) = m.annotations.as_ref().filter(|a| !a.is_empty()) {
        key(&mut out, &mut first, "annotations");
        string_map(&mut out, a);
    }
    out.push('}');
    out.into_bytes()
}

/// `json.Marshal(index)`.
pub fn marshal_index(ix: &Index) -> Vec<u8> {
    let mut out = String::with_capacity(1024);
    out.push('{');
    let mut first = true;
    key(&mut out, &mut first, "schemaVersion");
    let _ = write!(out, "{}", ix.schema_version);
    if let Some(t) = ix.media_type.as_deref().filter(|t| !t.is_empty()) {
        key(&mut out, &mut first, "mediaType");
        go_string(&mut out, t);
    }
    if let Some(t) = ix.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        key(&mut out, &mut first, "artifactType");
        go_string(&mut out, t);
    }
    key(&mut out, &mut first, "manifests");
    descriptor_list(&mut out, ix.manifests.as_deref());
    if let Some(s) = &ix.subject {
        key(&mut out, &mut first, "subject");
        descriptor(&mut out, s);
    }
    if let Some(a) = ix.annotations.as_ref().filter(|a| !a.is_empty()) {
        key(&mut out, &mut first, "annotations");
        string_map(&mut out, a);
    }
    out.push('}');
    out.into_bytes()
}

/// One zTOC of a SOCI index.
#[derive(Clone, Debug)]
pub struct ZtocRef {
    pub digest: String,
    pub size: u64,
    pub layer_digest: String,
    pub layer_media_type: String,
    pub span_size: u64,
    pub disable_xattrs: bool,
}

/// The SOCI index manifest (v1 with `subject`, v2 without).
pub fn soci_index(
    version: IndexVersion,
    ztocs: &[ZtocRef],
    subject: Option<Descriptor>,
    build_tool: &str,
) -> Vec<u8> {
    let config_type = match version {
        IndexVersion::V1 => media::SOCI_INDEX_V1,
        IndexVersion::V2 => media::SOCI_INDEX_V2,
    };
    let layers = ztocs
        .iter()
        .map(|z| {
            let mut annotations = BTreeMap::from([
                (ANNOTATION_LAYER_DIGEST.to_string(), z.layer_digest.clone()),
                (
                    ANNOTATION_LAYER_MEDIA_TYPE.to_string(),
                    z.layer_media_type.clone(),
                ),
                (ANNOTATION_SPAN_SIZE.to_string(), z.span_size.to_string()),
            ]);
            if z.disable_xattrs {
                annotations.insert(ANNOTATION_DISABLE_XATTRS.into(), "true".into());
            }
            Descriptor {
                media_type: "application/octet-stream".into(),
                digest: z.digest.clone(),
                size: i64::try_from(z.size).unwrap_or(i64::MAX),
                annotations: Some(annotations),
                ..Default::default()
            }
        })
        .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor {
            media_type: config_type.into(),
            digest: EMPTY_CONFIG_DIGEST.into(),
            size: 2,
            ..Default::default()
        },
        layers: Some(layers),
        subject: match version {
            IndexVersion::V1 => subject.map(|s| Descriptor {
                media_type: s.media_type,
                digest: s.digest,
                size: s.size,
                ..Default::default()
            }),
            IndexVersion::V2 => None,
        },
        annotations: Some(BTreeMap::from([(
            ANNOTATION_BUILD_TOOL.to_string(),
            build_tool.to_string(),
        )])),
    };
    marshal_manifest(&manifest)
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, ConvertError> {
    serde_json::from_slice(bytes).map_err(|e| ConvertError {
        what: what.into(),
        detail: format!("not valid JSON of the expected shape: {e}"),
    })
}

/// Step 2 of the v2 conversion: the image manifest re-typed as OCI and annotated with the
/// SOCI index digest. Returns the new bytes and the manifest's annotations.
pub fn annotate_manifest(
    original: &[u8],
    soci_index_digest: &str,
) -> Result<(Vec<u8>, BTreeMap<String, String>), ConvertError> {
    let mut m: Manifest = parse("image manifest", original)?;
    m.media_type = Some(media::OCI_MANIFEST.into());
    m.config.media_type = media::OCI_CONFIG.into();
    let annotations = m.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        media::ANNOTATION_INDEX_DIGEST.into(),
        soci_index_digest.into(),
    );
    let annotations = annotations.clone();
    Ok((marshal_manifest(&m), annotations))
}

/// One converted platform, for step 3.
#[derive(Clone, Debug)]
pub struct Converted {
    pub original_digest: String,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub manifest_annotations: BTreeMap<String, String>,
    pub soci_digest: String,
    pub soci_size: u64,
    pub platform: Platform,
}

/// Step 3: the OCI index, from the original index (`Some(bytes)`) or wrapping the single
/// converted manifest (`None`).
pub fn convert_index(
    original: Option<&[u8]>,
    converted: &[Converted],
) -> Result<Vec<u8>, ConvertError> {
    let mut index = match original {
        Some(bytes) => parse::<Index>("image index", bytes)?,
        None => Index {
            schema_version: 2,
            manifests: Some(Vec::new()),
            ..Default::default()
        },
    };
    index.media_type = Some(media::OCI_INDEX.into());
    let manifests = index.manifests.get_or_insert_with(Vec::new);
    for c in converted {
        let size = i64::try_from(c.manifest_size).unwrap_or(i64::MAX);
        match manifests.iter_mut().find(|d| d.digest == c.original_digest) {
            Some(d) => {
                d.media_type = media::OCI_MANIFEST.into();
                d.digest = c.manifest_digest.clone();
                d.size = size;
                d.annotations = Some(c.manifest_annotations.clone());
            }
            None => manifests.push(Descriptor {
                media_type: media::OCI_MANIFEST.into(),
                digest: c.manifest_digest.clone(),
                size,
                annotations: Some(c.manifest_annotations.clone()),
                platform: Some(c.platform.clone()),
                ..Default::default()
            }),
        }
    }
    for c in converted {
        manifests.retain(|d| {
            !(d.artifact_type.as_deref() == Some(media::SOCI_INDEX_V2)
                && d.platform.as_ref() == Some(&c.platform))
        });
        manifests.push(Descriptor {
            media_type: media::OCI_MANIFEST.into(),
            digest: c.soci_digest.clone(),
            size: i64::try_from(c.soci_size).unwrap_or(i64::MAX),
            annotations: Some(BTreeMap::from([(
                media::ANNOTATION_IMAGE_MANIFEST_DIGEST.to_string(),
                c.manifest_digest.clone(),
            )])),
            platform: Some(c.platform.clone()),
            artifact_type: Some(media::SOCI_INDEX_V2.into()),
            ..Default::default()
        });
    }
    Ok(marshal_index(&index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escaping() {
        let mut s = String::new();
        go_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn empty_config_digest() {
        assert_eq!(
            crate::registry::sha256_digest(EMPTY_CONFIG),
            EMPTY_CONFIG_DIGEST
        );
    }

    #[test]
    fn soci_index_layout() {
        let z = ZtocRef {
            digest: "sha256:aa".into(),
            size: 10,
            layer_digest: "sha256:bb".into(),
            layer_media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            span_size: 4194304,
            disable_xattrs: false,
        };
        let v2 =
            String::from_utf8(soci_index(IndexVersion::V2, &[z.clone()], None, "t<1>")).unwrap();
        assert_eq!(
            v2,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.amazon.soci.index.v2+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/octet-stream","digest":"sha256:aa","size":10,"annotations":{"com.amazon.soci.image-layer-digest":"sha256:bb","com.amazon.soci.image-layer-mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","com.amazon.soci.span-size":"4194304"}}],"annotations":{"com.amazon.soci.build-tool-identifier":"t\u003c1\u003e"}}"#
        );
        let subject = Descriptor {
            media_type: media::OCI_MANIFEST.into(),
            digest: "sha256:cc".into(),
            size: 5,
            annotations: Some(BTreeMap::from([("x".into(), "y".into())])),
            ..Default::default()
        };
        let v1 = String::from_utf8(soci_index(IndexVersion::V1, &[z], Some(subject), "t")).unwrap();
        assert!(v1.contains(r#""subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":5},"annotations""#), "{v1}");
        assert!(v1.contains("soci.index.v1+json"));
    }

    #[test]
    fn annotate_docker_manifest() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:c"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":9,"digest":"sha256:l"}]}"#;
        let (bytes, ann) = annotate_manifest(docker, "sha256:s").unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":7},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:l","size":9}],"annotations":{"com.amazon.soci.index-digest":"sha256:s"}}"#
        );
        assert_eq!(ann.len(), 1);
    }

    #[test]
    fn index_conversion_replaces_and_appends() {
        let original = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:a","platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"sha256:att","platform":{"architecture":"unknown","os":"unknown"}}]}"#;
        let p = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        let c = Converted {
            original_digest: "sha256:a".into(),
            manifest_digest: "sha256:a2".into(),
            manifest_size: 3,
            manifest_annotations: BTreeMap::from([("k".into(), "v".into())]),
            soci_digest: "sha256:s".into(),
            soci_size: 4,
            platform: p,
        };
        let out = String::from_utf8(convert_index(Some(original), &[c]).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a2","size":3,"annotations":{"k":"v"},"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:att","size":2,"platform":{"architecture":"unknown","os":"unknown"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:s","size":4,"annotations":{"com.amazon.soci.image-manifest-digest":"sha256:a2"},"platform":{"architecture":"amd64","os":"linux"},"artifactType":"application/vnd.amazon.soci.index.v2+json"}]}"#
        );
    }
}
