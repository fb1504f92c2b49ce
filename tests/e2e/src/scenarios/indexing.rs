//! The main job: a push event of a two-platform image is delivered to the filter, the filter
//! invokes the generator, the generator indexes; then the whole SOCI graph it pushed is checked.

use anyhow::{Context, ensure};

use super::{Pass, describe, status_of};
use crate::{INCLUDED_REPO, INDEX_TAG_SUFFIX, MIN_LAYER_SIZE, SPAN_SIZE, image, verify};

impl Pass<'_, '_> {
    pub(super) fn positive(
        &mut self,
        tag: &str,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<(image::Image, String)> {
        let image = image::generate(seed, MIN_LAYER_SIZE as usize)?;
        let client = self.registry_client()?;
        self.cx
            .rt
            .block_on(image::push(&client, INCLUDED_REPO, tag, &image))?;
        println!(
            "pushed {INCLUDED_REPO}:{tag} ({}, {} layers, 2 platforms)",
            image.index_digest,
            image.layer_count()
        );
        let (event, delivery) = self.deliver_index_push(&image.index_digest, tag, "push")?;
        let run = self.one_successful_run(&delivery, "push")?;
        ensure!(
            run.payload_json() == event,
            "the generator got {} instead of the original event",
            String::from_utf8_lossy(&run.payload)
        );
        let outcome = run.json();
        ensure!(
            status_of(run) == "indexed",
            "the generator did not index: {}",
            describe(run)
        );
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        ensure!(
            outcome.get("index_tag").and_then(|t| t.as_str()) == Some(index_tag.as_str()),
            "the generator reports index tag {:?}, want {index_tag}",
            outcome.get("index_tag")
        );
        let index_digest = outcome
            .get("index_digest")
            .and_then(|d| d.as_str())
            .context("the generator's outcome has no index_digest")?
            .to_string();
        checks.push(format!(
            "{}: push event matches the rule ({}); filter invoked the generator asynchronously (202); generator indexed {INCLUDED_REPO}:{tag} -> {index_tag} {index_digest}",
            self.arch,
            self.matcher.name()
        ));
        Ok((image, index_digest))
    }

    /// The graph under `<tag>-soci` matches the pushed image, and is what the generator reported.
    pub(super) fn verify_graph(
        &mut self,
        tag: &str,
        image: &image::Image,
        index_digest: &str,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        let client = self.cx.registry.client()?;
        let report = self.cx.rt.block_on(verify::check_graph(
            &client,
            INCLUDED_REPO,
            tag,
            &index_tag,
            image,
            MIN_LAYER_SIZE,
            SPAN_SIZE,
        ))?;
        ensure!(
            report.index_digest == index_digest,
            "{index_tag} is {}, the generator reported {index_digest}",
            report.index_digest
        );
        checks.push(format!(
            "{arch}: {index_tag} graph: {} platforms, {} zTOCs verified ({} spans, {} entries), JSON canonical, {tag} untouched",
            report.platforms, report.ztocs, report.spans_checked, report.entries_checked
        ));
        Ok(())
    }
}
