//! Every way an image lands in ECR, and the index tag cleanup, end to end: the module is
//! deployed with `index_pull_through_cache_images`, `index_replicated_images` and
//! `index_tag_cleanup` on; each event shape of the ECR user guide is matched against the
//! deployed rule and delivered to the filter as EventBridge does.
//!
//! The data plane is docker-registry (distribution 2.8), which cannot delete a tag: "the tag was
//! deleted" is made by moving it to another image, which leaves the deleted image readable by
//! digest, as it is in ECR while another tag names it. The cleanup deletes the index by digest
//! there (the generator's `registry_manifest_delete`); ECR's `BatchDeleteImage` path is not run
//! here (moto's ECR has no data plane to compare with).

use anyhow::{Context, ensure};
use soci_index_generator::RegistryClient;
use soci_lambda_contract::event::EcrImageActionEvent;

use super::{Pass, describe, status_of};
use crate::{INCLUDED_REPO, INDEX_TAG_SUFFIX, MIN_LAYER_SIZE, image};

impl Pass<'_, '_> {
    /// Pull through cache and replication events index like a push; failed ones do not match
    /// the rule; a tag's delete removes its index tag only when it still points at the deleted
    /// image's conversion, and nothing with the cleanup off.
    pub(super) fn image_sources(
        &mut self,
        tag: &str,
        image: &image::Image,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        ensure!(
            self.generator
                .config
                .env
                .get("index_tag_cleanup")
                .map(String::as_str)
                == Some("true"),
            "the module was deployed with index_tag_cleanup = true, but the generator's environment has {:?}",
            self.generator.config.env.get("index_tag_cleanup")
        );
        let client = self.registry_client()?;
        let (account, region) = (self.account.clone(), self.cx.region.clone());

        for (shape, event_tag) in [
            ("pull through cache", format!("{tag}-cached")),
            ("replication", format!("{tag}-replicated")),
        ] {
            self.cx
                .rt
                .block_on(image::push(&client, INCLUDED_REPO, &event_tag, image))?;
            let digest = image.index_digest.as_str();
            let event = if shape == "replication" {
                EcrImageActionEvent::replication(
                    &account,
                    &region,
                    INCLUDED_REPO,
                    digest,
                    &event_tag,
                    ("210987654321", "us-west-2"),
                )
            } else {
                EcrImageActionEvent::pull_through_cache(
                    &account,
                    &region,
                    INCLUDED_REPO,
                    digest,
                    &event_tag,
                    "public.ecr.aws",
                )
            };
            let event = serde_json::to_value(&event)?;
            let status = self.deliver_to_generator(&event, shape)?;
            ensure!(
                status == "indexed",
                "{shape}: the generator answered {status}"
            );
            let index_tag = format!("{event_tag}{INDEX_TAG_SUFFIX}");
            ensure!(
                self.head(&client, &index_tag)?.is_some(),
                "{shape}: no {index_tag} after the generator said indexed"
            );
            checks.push(format!(
                "{arch}: {shape} event: matched by the deployed rule, invoked by the filter, indexed as {index_tag}"
            ));
        }
        for (shape, mut event) in [
            (
                "pull through cache",
                EcrImageActionEvent::pull_through_cache(
                    &account,
                    &region,
                    INCLUDED_REPO,
                    &image.index_digest,
                    tag,
                    "public.ecr.aws",
                ),
            ),
            (
                "replication",
                EcrImageActionEvent::replication(
                    &account,
                    &region,
                    INCLUDED_REPO,
                    &image.index_digest,
                    tag,
                    ("210987654321", "us-west-2"),
                ),
            ),
        ] {
            event.detail.sync_status = event.detail.sync_status.map(|_| "FAILED".into());
            if !event.detail.result.is_empty() {
                event.detail.result = "FAILED".into();
            }
            ensure!(
                !self.rule_matches(&serde_json::to_value(&event)?)?,
                "the rule matches a failed {shape} event"
            );
        }
        checks.push(format!(
            "{arch}: failed pull through cache and replication events do not match the rule"
        ));

        self.cleanup(tag, seed, &client, checks)
    }

    fn cleanup(
        &mut self,
        tag: &str,
        seed: u64,
        client: &RegistryClient,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        // Two images of their own: an index shared with another tag is never deleted by digest.
        let first = image::generate(seed ^ 0xc1ea, MIN_LAYER_SIZE as usize)?;
        let second = image::generate(seed ^ 0xc1eb, MIN_LAYER_SIZE as usize)?;

        // Deleted: <gone>-soci still points at the conversion of the deleted image.
        let gone = format!("{tag}-gone");
        let gone_index = self.index_pushed(client, &gone, &first)?;
        self.cx
            .rt
            .block_on(image::push(client, INCLUDED_REPO, &gone, &second))?;
        let status = self.deliver_delete(&first.index_digest, &gone, "deleted tag")?;
        ensure!(
            status == "index_tag_deleted",
            "deleted tag: the generator answered {status}"
        );
        let gone_index_tag = format!("{gone}{INDEX_TAG_SUFFIX}");
        ensure!(
            self.head(client, &gone_index_tag)?.is_none(),
            "deleted tag: {gone_index_tag} is still there"
        );
        ensure!(
            self.head(client, &gone)?.as_deref() == Some(second.index_digest.as_str()),
            "deleted tag: {gone} was touched"
        );
        checks.push(format!(
            "{arch}: DELETE of {gone}: {gone_index_tag} ({gone_index}) deleted (index_tag_deleted), nothing else"
        ));

        // Last tag: ECR deletes the image with its last tag, so the original is gone when the
        // event arrives; the index names what it was converted from.
        let last = format!("{tag}-last");
        let third = image::generate(seed ^ 0xc1ec, MIN_LAYER_SIZE as usize)?;
        let last_index = self.index_pushed(client, &last, &third)?;
        ensure!(
            self.cx
                .rt
                .block_on(client.delete_manifest(INCLUDED_REPO, &third.index_digest))?,
            "last tag: {last} ({}) was not there to delete",
            third.index_digest
        );
        let status = self.deliver_delete(&third.index_digest, &last, "last tag")?;
        ensure!(
            status == "index_tag_deleted",
            "last tag: the generator answered {status}"
        );
        let last_index_tag = format!("{last}{INDEX_TAG_SUFFIX}");
        ensure!(
            self.head(client, &last_index_tag)?.is_none(),
            "last tag: {last_index_tag} is still there"
        );
        checks.push(format!(
            "{arch}: DELETE of {last}, the image's last tag (the image gone with it, as in ECR): {last_index_tag} ({last_index}) deleted on its converted-from annotation"
        ));

        // Moved: <moved>-soci was moved to the conversion of the image pushed after.
        let moved = format!("{tag}-moved");
        // `first` was indexed as <gone> above: its layers' zTOCs come from the cache the
        // module created.
        let (_, cache_uses) = self.index_pushed_with_cache(client, &moved, &first)?;
        ensure!(
            !cache_uses.is_empty() && cache_uses.iter().all(|u| u == "hit"),
            "zTOC cache: indexing {moved}, an image already indexed as {gone}, gave {cache_uses:?}, expected every layer a hit"
        );
        checks.push(format!(
            "{arch}: zTOC cache (ztoc_cache = true): indexing an image again under another tag: {} layer(s), every one a cache hit",
            cache_uses.len()
        ));
        let moved_index = self.index_pushed(client, &moved, &second)?;
        let status = self.deliver_delete(&first.index_digest, &moved, "moved tag")?;
        ensure!(
            status == "index_tag_kept",
            "moved tag: the generator answered {status}"
        );
        let moved_index_tag = format!("{moved}{INDEX_TAG_SUFFIX}");
        ensure!(
            self.head(client, &moved_index_tag)?.as_deref() == Some(moved_index.as_str()),
            "moved tag: {moved_index_tag} no longer names {moved_index}"
        );
        checks.push(format!(
            "{arch}: tag moved, then the old image's DELETE: {moved_index_tag} kept on the new image's conversion (index_tag_kept)"
        ));

        // Off: the same delete as the first case, with the generator's setting removed.
        let off = format!("{tag}-off");
        let off_index = self.index_pushed(client, &off, &first)?;
        self.cx
            .rt
            .block_on(image::push(client, INCLUDED_REPO, &off, &second))?;
        self.restart_generator_without_cleanup(true)?;
        let result = self.deliver_delete(&first.index_digest, &off, "cleanup off");
        self.restart_generator_without_cleanup(false)?;
        let status = result?;
        ensure!(
            status == "skipped",
            "cleanup off: the generator answered {status}"
        );
        let off_index_tag = format!("{off}{INDEX_TAG_SUFFIX}");
        ensure!(
            self.head(client, &off_index_tag)?.as_deref() == Some(off_index.as_str()),
            "cleanup off: {off_index_tag} was touched"
        );
        checks.push(format!(
            "{arch}: index_tag_cleanup off: the DELETE is answered skipped, {off_index_tag} untouched"
        ));
        Ok(())
    }

    /// Pushes `image` as `tag`, delivers its push event and answers the digest of `<tag>-soci`.
    fn index_pushed(
        &mut self,
        client: &RegistryClient,
        tag: &str,
        image: &image::Image,
    ) -> anyhow::Result<String> {
        self.index_pushed_with_cache(client, tag, image)
            .map(|(digest, _)| digest)
    }

    /// [`Self::index_pushed`], with the `ztoc_cache` use of each layer the generator indexed.
    fn index_pushed_with_cache(
        &mut self,
        client: &RegistryClient,
        tag: &str,
        image: &image::Image,
    ) -> anyhow::Result<(String, Vec<String>)> {
        self.cx
            .rt
            .block_on(image::push(client, INCLUDED_REPO, tag, image))?;
        let (_, delivery) = self.deliver_index_push(&image.index_digest, tag, tag)?;
        let run = self.one_successful_run(&delivery, tag)?;
        ensure!(
            status_of(run) == "indexed",
            "{tag}: the generator answered {}",
            describe(run)
        );
        let cache_uses = run.json()["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|layer| layer["ztoc_cache"].as_str().map(String::from))
            .collect();
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        let digest = self
            .head(client, &index_tag)?
            .with_context(|| format!("no {index_tag} after indexing"))?;
        Ok((digest, cache_uses))
    }

    /// Delivers the DELETE event of `tag` at `digest`; the generator's status.
    fn deliver_delete(&mut self, digest: &str, tag: &str, what: &str) -> anyhow::Result<String> {
        let event =
            EcrImageActionEvent::delete(&self.account, &self.cx.region, INCLUDED_REPO, digest, tag);
        self.deliver_to_generator(&serde_json::to_value(&event)?, what)
    }

    /// Delivers `event` through the rule and the filter, which must invoke the generator once,
    /// successfully; its `status`.
    fn deliver_to_generator(
        &mut self,
        event: &serde_json::Value,
        what: &str,
    ) -> anyhow::Result<String> {
        let delivery = self.deliver(event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "invoked",
            "{what}: the filter did not invoke the generator: {}",
            describe(&delivery.filter[0])
        );
        let run = self.one_successful_run(&delivery, what)?;
        Ok(status_of(run))
    }

    fn head(&self, client: &RegistryClient, reference: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .cx
            .rt
            .block_on(client.head_manifest(INCLUDED_REPO, reference))?)
    }

    /// Restarts the generator with its deployed environment, less `index_tag_cleanup` when
    /// `without` (the old process is stopped, by pid, when replaced).
    fn restart_generator_without_cleanup(&mut self, without: bool) -> anyhow::Result<()> {
        let log_name = if without {
            "soci-index-generator-cleanup-off.log"
        } else {
            "soci-index-generator-cleanup-on.log"
        };
        self.restart_generator_with(None, |k| without && k == "index_tag_cleanup", log_name)
    }
}
