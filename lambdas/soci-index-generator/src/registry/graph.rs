//! One repository of a registry as a [`soci_core::inspect::GraphSource`], so the one SOCI-graph
//! checker reads back what was pushed. Blobs are read whole into memory: this serves checks of
//! what the pipeline wrote (the demo, the tests), not the streaming pipeline itself.

use soci_core::inspect::{GraphSource, SourceManifest};

use super::{RegistryClient, RegistryError};

pub struct RepositoryGraph<'c> {
    pub client: &'c RegistryClient,
    pub repository: &'c str,
}

impl GraphSource for RepositoryGraph<'_> {
    type Error = RegistryError;
    type Layer = Vec<u8>;

    async fn manifest(&self, reference: &str) -> Result<Option<SourceManifest>, RegistryError> {
        let manifest = self.client.get_manifest(self.repository, reference).await?;
        Ok(manifest.map(|m| SourceManifest {
            digest: m.digest,
            media_type: m.media_type,
            bytes: m.bytes.to_vec(),
        }))
    }

    async fn blob(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        Ok(self
            .client
            .get_blob_bytes(self.repository, digest)
            .await?
            .to_vec())
    }

    async fn layer(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        Ok(self
            .client
            .get_blob_bytes(self.repository, digest)
            .await?
            .to_vec())
    }
}
