//! A registry failure surfaces as a failed invocation: the generator, restarted against a dead
//! registry address, fails the invocation and every async retry with a message naming it.

use anyhow::ensure;

use super::{Delivery, Pass, describe};
use crate::{INCLUDED_REPO, INDEX_TAG_SUFFIX, image};

impl Pass<'_, '_> {
    /// Restarts the generator against a dead registry address; the invocation (and every async
    /// retry) must fail with a message naming that address.
    pub(super) fn registry_failure(
        &mut self,
        tag: &str,
        image: &image::Image,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let arch = self.arch;
        let fail_tag = format!("{tag}-unreachable");
        let client = self.registry_client()?;
        self.cx
            .rt
            .block_on(image::push(&client, INCLUDED_REPO, &fail_tag, image))?;

        let dead = test_support::free_port().map_err(anyhow::Error::from)?;
        self.restart_generator(&format!("http://127.0.0.1:{dead}"))?;

        let (_, delivery) =
            self.deliver_index_push(&image.index_digest, &fail_tag, "unreachable registry")?;
        let attempts = self.cx.args.async_retries as usize + 1;
        self.check_failed_attempts(&delivery, attempts, &format!("127.0.0.1:{dead}"))?;
        let soci = self.cx.rt.block_on(
            client.head_manifest(INCLUDED_REPO, &format!("{fail_tag}{INDEX_TAG_SUFFIX}")),
        )?;
        ensure!(
            soci.is_none(),
            "an index was pushed although the generator failed"
        );
        let first = delivery.generator[0].json();
        checks.push(format!(
            "{arch}: registry unreachable: {attempts} failed attempts ({}), message: {}",
            first
                .get("errorType")
                .and_then(|t| t.as_str())
                .unwrap_or("?"),
            first
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or("?")
        ));
        Ok(())
    }

    /// Replaces the generator's process with one reading from `registry_url`; the old one is
    /// killed (by pid) when dropped here.
    fn restart_generator(&mut self, registry_url: &str) -> anyhow::Result<()> {
        self.restart_generator_with(
            Some(registry_url),
            |_| false,
            "soci-index-generator-unreachable.log",
        )
    }

    /// `attempts` generator runs, numbered in order, each failed naming `address`.
    fn check_failed_attempts(
        &self,
        delivery: &Delivery,
        attempts: usize,
        address: &str,
    ) -> anyhow::Result<()> {
        ensure!(
            delivery.generator.len() == attempts,
            "unreachable registry: {} generator attempts, want {attempts} (1 + {} async retries): {:?}",
            delivery.generator.len(),
            self.cx.args.async_retries,
            delivery.generator.iter().map(describe).collect::<Vec<_>>()
        );
        for (n, run) in delivery.generator.iter().enumerate() {
            ensure!(
                !run.outcome.is_success(),
                "unreachable registry: attempt {n} succeeded: {}",
                describe(run)
            );
            ensure!(
                run.attempt as usize == n,
                "unreachable registry: attempt numbers {:?}",
                delivery
                    .generator
                    .iter()
                    .map(|r| r.attempt)
                    .collect::<Vec<_>>()
            );
            let message = run
                .json()
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            ensure!(
                message.contains(address),
                "unreachable registry: the error does not name the registry {address}: {}",
                describe(run)
            );
        }
        Ok(())
    }
}
