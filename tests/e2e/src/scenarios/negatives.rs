//! What must not index: the same event twice, the generator's own `<tag>-soci` push, an
//! untagged child push, a repository outside the filters, and events the rule must reject.

use anyhow::ensure;
use soci_core::oci::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
use soci_index_generator::RegistryClient;

use super::{Pass, describe, status_of};
use crate::{EXCLUDED_REPO, INCLUDED_REPO, INDEX_TAG_SUFFIX, MIN_LAYER_SIZE, image};

impl Pass<'_, '_> {
    pub(super) fn negatives(
        &mut self,
        tag: &str,
        image: &image::Image,
        index_digest: &str,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let client = self.registry_client()?;
        self.repeated_event(&client, tag, image, index_digest, checks)?;
        self.index_push_skipped(tag, index_digest, checks)?;
        self.untagged_push_skipped(image, checks)?;
        self.excluded_repository_skipped(&client, tag, seed, checks)?;
        self.rule_rejects_other_pushes(tag, image, checks)
    }

    /// The same event again: nothing new.
    fn repeated_event(
        &mut self,
        client: &RegistryClient,
        tag: &str,
        image: &image::Image,
        index_digest: &str,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        let (_, delivery) = self.deliver_index_push(&image.index_digest, tag, "repeat")?;
        let run = self.one_successful_run(&delivery, "repeat")?;
        let outcome = run.json();
        let pushed_nothing = match status_of(run).as_str() {
            "already_indexed" => true,
            "indexed" => outcome
                .get("pushed")
                .and_then(|p| p.as_array())
                .is_some_and(|p| p.is_empty()),
            _ => false,
        };
        ensure!(
            pushed_nothing,
            "repeat: the same event pushed again: {}",
            describe(run)
        );
        let now = self
            .cx
            .rt
            .block_on(client.head_manifest(INCLUDED_REPO, &index_tag))?;
        ensure!(
            now.as_deref() == Some(index_digest),
            "repeat: {index_tag} moved to {now:?}"
        );
        checks.push(format!(
            "{arch}: the same event twice: {}, {index_tag} unchanged",
            status_of(run)
        ));
        Ok(())
    }

    /// The push of `<tag>-soci` itself (the generator's output) is skipped.
    fn index_push_skipped(
        &mut self,
        tag: &str,
        index_digest: &str,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        let event = self.event(
            INCLUDED_REPO,
            index_digest,
            &index_tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        self.deliver_expecting_skip(&event, "-soci push")?;
        checks.push(format!(
            "{arch}: the {index_tag} push event is skipped by the filter (no loop)"
        ));
        Ok(())
    }

    /// An untagged child push (what a multi-arch push also sends) is skipped in V2.
    fn untagged_push_skipped(
        &mut self,
        image: &image::Image,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let child = &image.platforms[0];
        let event = self.event(
            INCLUDED_REPO,
            &child.manifest_digest,
            "",
            MEDIA_TYPE_OCI_MANIFEST,
        );
        self.deliver_expecting_skip(&event, "untagged push")?;
        checks.push(format!("{arch}: untagged child push skipped by the filter"));
        Ok(())
    }

    /// A repository the filters exclude gets nothing.
    fn excluded_repository_skipped(
        &mut self,
        client: &RegistryClient,
        tag: &str,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        let other = image::generate(seed ^ 0x5eed, MIN_LAYER_SIZE as usize)?;
        self.cx
            .rt
            .block_on(image::push(client, EXCLUDED_REPO, tag, &other))?;
        let event = self.event(
            EXCLUDED_REPO,
            &other.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        self.deliver_expecting_skip(&event, EXCLUDED_REPO)?;
        let soci = self
            .cx
            .rt
            .block_on(client.head_manifest(EXCLUDED_REPO, &index_tag))?;
        ensure!(
            soci.is_none(),
            "{EXCLUDED_REPO}:{index_tag} exists ({soci:?})"
        );
        checks.push(format!(
            "{arch}: {EXCLUDED_REPO} (not in the filters) is skipped, no {index_tag} there"
        ));
        Ok(())
    }

    /// The rule: a failed push and another account's push do not match.
    fn rule_rejects_other_pushes(
        &self,
        tag: &str,
        image: &image::Image,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let mut failed = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        failed["detail"]["result"] = "FAILURE".into();
        ensure!(
            !self.rule_matches(&failed)?,
            "the rule matches a failed push"
        );
        let mut foreign = self.event(
            INCLUDED_REPO,
            &image.index_digest,
            tag,
            MEDIA_TYPE_OCI_INDEX,
        );
        foreign["account"] = "000000000000".into();
        ensure!(
            !self.rule_matches(&foreign)?,
            "the rule matches another account's push"
        );
        checks.push(format!(
            "{arch}: the rule rejects a failed push and another account's push"
        ));
        Ok(())
    }
}
