//! Writing the OCI structs as Go's `encoding/json` does: Go struct field order and `omitempty`.

use super::{Descriptor, Index, Manifest, Platform};
use crate::gojson::ObjectWriter;

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
}
