//! Index before deploy: a pushed image that no event announced is indexed by
//! `cargo xtask index REF --wait`, which invokes the deployed generator synchronously, the way
//! a CI pipeline calls it between its push and its deploy; the command must exit 0 only once
//! the index exists, and the index must be the verified graph of that image.

use anyhow::{Context, ensure};

use super::Pass;
use crate::{INCLUDED_REPO, INDEX_TAG_SUFFIX, MIN_LAYER_SIZE, SPAN_SIZE, image, stack, verify};

impl Pass<'_, '_> {
    pub(super) fn index_before_deploy(
        &mut self,
        seed: u64,
        checks: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let tag = format!("w{}-{}", seed / 1_000_000_000, self.arch.tag());
        let image = image::generate(seed ^ 0x5eed, MIN_LAYER_SIZE as usize)?;
        let client = self.registry_client()?;
        self.cx
            .rt
            .block_on(image::push(&client, INCLUDED_REPO, &tag, &image))?;
        let registry = &self.cx.registry;
        let (scheme, host) = registry
            .url
            .split_once("://")
            .context("registry URL without a scheme")?;
        let reference = format!("{host}/{INCLUDED_REPO}:{tag}");
        let endpoint = self.cx.emulator.invoke_endpoint();
        let mut args = vec![
            "xtask",
            "index",
            &reference,
            "--wait",
            "--function",
            &self.generator.config.name,
            "--lambda-endpoint",
            &endpoint,
            "--account",
            &self.account,
            "--region",
            &self.cx.region,
        ];
        if scheme == "http" {
            args.push("--plain-http");
        }
        let mut command = stack::cargo(&args);
        command.env("index_tag_suffix", INDEX_TAG_SUFFIX);
        registry.credentials_env(&mut command);
        // The emulator signs nothing, but the SDK will not send unsigned requests.
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            if std::env::var_os(name).is_none() {
                command.env(name, "testing");
            }
        }
        let output = command
            .output()
            .context("running cargo xtask index --wait")?;
        let said = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "cargo xtask index --wait failed ({}):\n{said}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");
        ensure!(
            said.contains(&format!(
                "{index_tag} is a verified SOCI index of {}",
                image.index_digest
            )),
            "cargo xtask index --wait did not confirm the index:\n{said}"
        );
        let report = self.cx.rt.block_on(verify::check_graph(
            &client,
            INCLUDED_REPO,
            &tag,
            &index_tag,
            &image,
            MIN_LAYER_SIZE,
            SPAN_SIZE,
        ))?;
        checks.push(format!(
            "{}: cargo xtask index --wait invoked {} (RequestResponse) for an unannounced push and exited 0 once {index_tag} existed: {} zTOCs verified",
            self.arch, self.generator.config.name, report.ztocs
        ));
        Ok(())
    }
}
