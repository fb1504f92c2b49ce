//! Backfill: images that were in ECR before the module was deployed. Hundreds of tagged images
//! are registered in ECR (moto's control plane, `PutImage` with their real digests) and pushed
//! to the registry the generator reads; `cargo xtask backfill --filter-function` must select
//! them with the deployed filter's settings, be interrupted (SIGINT to its process group, as a
//! Ctrl-C) part way, and a second run must invoke the generator only for what is left. A final
//! dry run finds nothing left.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use anyhow::{Context, ensure};
use test_support::image::{Entry, Layer, content, gzip_tar_layer, push_image};

use super::Pass;
use crate::{INCLUDED_REPO, MIN_LAYER_SIZE, stack};

/// Images the deployed filter (`e2e/app:*`) selects, and images in a repository it does not.
const SELECTED: usize = 240;
const EXCLUDED: usize = 24;
const EXCLUDED_REPO: &str = "e2e/backfill-excluded";
/// Lines reporting `indexed` after which the first run is interrupted.
const INTERRUPT_AFTER: usize = 60;

/// The JSON lines of one backfill run, counted by result.
struct Run {
    results: BTreeMap<String, usize>,
    lines: Vec<serde_json::Value>,
    stderr: String,
}

impl Run {
    fn count(&self, result: &str) -> usize {
        self.results.get(result).copied().unwrap_or(0)
    }
}

impl Pass<'_, '_> {
    pub(super) fn backfill(&mut self, seed: u64, checks: &mut Vec<String>) -> anyhow::Result<()> {
        let prefix = format!("bf{}", seed / 1_000_000_000);
        let shared = base_layer(seed)?;
        let ecr = self.cx.rt.block_on(async {
            aws_sdk_ecr::Client::new(&self.cx.aws.sdk_config(&self.cx.region).await)
        });
        for (repository, count) in [(INCLUDED_REPO, SELECTED), (EXCLUDED_REPO, EXCLUDED)] {
            self.register_images(&ecr, repository, &prefix, count, &shared, seed)?;
        }
        let generator = self.generator.config.name.clone();
        let invocations = |pass: &Self| {
            pass.cx
                .emulator
                .records()
                .iter()
                .filter(|r| r.function == generator)
                .count()
        };

        let before = invocations(self);
        let dry = self.run_backfill(&["--dry-run"], None)?;
        ensure!(
            invocations(self) == before,
            "a dry run invoked the generator"
        );
        ensure!(
            dry.count("would_index") >= SELECTED && dry.count("not_selected") >= EXCLUDED,
            "dry run: expected {SELECTED} to index and {EXCLUDED} not selected: {:?}\n{}",
            dry.results,
            dry.stderr
        );
        let ours = |run: &Run, result: &str| {
            run.lines
                .iter()
                .filter(|l| {
                    l["tag"].as_str().is_some_and(|t| t.starts_with(&prefix))
                        && l["result"] == result
                })
                .count()
        };
        ensure!(
            ours(&dry, "would_index") == SELECTED && ours(&dry, "not_selected") == EXCLUDED,
            "dry run over this pass's images: {:?}",
            dry.results
        );

        let first = self.run_backfill(&[], Some(INTERRUPT_AFTER))?;
        let indexed_first = ours(&first, "indexed");
        ensure!(
            (INTERRUPT_AFTER..SELECTED).contains(&indexed_first),
            "the interrupted run indexed {indexed_first} of {SELECTED}"
        );
        self.wait_for_idle()?;

        let before = invocations(self);
        let second = self.run_backfill(&[], None)?;
        let invoked = invocations(self) - before;
        let (indexed, already) = (ours(&second, "indexed"), ours(&second, "already_indexed"));
        ensure!(
            second.count("failed") == 0,
            "the second run failed on some images: {:?}\n{}",
            second
                .lines
                .iter()
                .filter(|l| l["result"] == "failed")
                .collect::<Vec<_>>(),
            second.stderr
        );
        ensure!(
            indexed + already == SELECTED && already >= indexed_first,
            "the second run: {indexed} indexed, {already} already indexed; the first indexed {indexed_first}"
        );
        ensure!(
            invoked == second.count("indexed"),
            "the second run invoked the generator {invoked} times for {} images left",
            second.count("indexed")
        );

        let last = self.run_backfill(&["--dry-run"], None)?;
        ensure!(
            ours(&last, "would_index") == 0 && ours(&last, "already_indexed") == SELECTED,
            "after the second run, still to index: {:?}",
            last.results
        );
        let summary = second
            .stderr
            .lines()
            .skip_while(|l| !l.starts_with("backfill summary"));
        println!("{}", summary.collect::<Vec<_>>().join("\n"));
        checks.push(format!(
            "backfill: {SELECTED} selected images ({EXCLUDED} in an excluded repository left alone); interrupted after {indexed_first} indexed, the re-run invoked the generator {invoked} times for the {indexed} left and found {already} already indexed; a final dry run finds nothing left"
        ));
        Ok(())
    }

    /// Pushes `count` images `<prefix>-NNN` to the registry and registers each in ECR with its
    /// manifest bytes and digest, as a push to ECR would.
    fn register_images(
        &self,
        ecr: &aws_sdk_ecr::Client,
        repository: &str,
        prefix: &str,
        count: usize,
        shared: &Layer,
        seed: u64,
    ) -> anyhow::Result<()> {
        let client = self.registry_client()?;
        self.cx.rt.block_on(async {
            match ecr
                .create_repository()
                .repository_name(repository)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_repository_already_exists_exception()) => {}
                Err(e) => anyhow::bail!(
                    "ECR CreateRepository {repository}: {}",
                    aws_sdk_ecr::error::DisplayErrorContext(&e)
                ),
            }
            for n in 0..count {
                let tag = format!("{prefix}-{n:03}");
                // A small layer of its own (below the minimum size, so not indexed) makes each
                // image a distinct digest.
                let own = gzip_tar_layer(&[Entry::Bytes(
                    format!("etc/{tag}"),
                    content(seed ^ n as u64, 256),
                )])?;
                push_image(&client, repository, Some(&tag), "amd64", &[shared, &own]).await?;
                // ECR's record of the same image: the bytes the registry serves, and their digest.
                let pushed = client
                    .get_manifest(repository, &tag)
                    .await?
                    .with_context(|| format!("{repository}:{tag} was just pushed"))?;
                ecr.put_image()
                    .repository_name(repository)
                    .image_tag(&tag)
                    .image_digest(&pushed.digest)
                    .image_manifest_media_type(&pushed.media_type)
                    .image_manifest(String::from_utf8(pushed.bytes.to_vec())?)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "ECR PutImage {repository}:{tag}: {}",
                            aws_sdk_ecr::error::DisplayErrorContext(&e)
                        )
                    })?;
            }
            Ok(())
        })
    }

    /// Runs `cargo xtask backfill --filter-function <deployed filter>`; with `interrupt_after`,
    /// sends SIGINT to its process group once that many images were reported `indexed`.
    fn run_backfill(&self, extra: &[&str], interrupt_after: Option<usize>) -> anyhow::Result<Run> {
        let endpoint = self.cx.emulator.invoke_endpoint();
        let mut args = vec![
            "xtask",
            "backfill",
            "--filter-function",
            &self.deployment.filter_arn,
            "--lambda-endpoint",
            &endpoint,
            "--region",
            &self.cx.region,
            // The deployed generator reads ECR; the stack serves ECR's data from this registry.
            "--registry-url",
            &self.cx.registry.url,
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut command = stack::cargo(&args);
        for (name, value) in self.cx.aws.env(&self.cx.region) {
            command.env(name, value);
        }
        self.cx.registry.credentials_env(&mut command);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running cargo xtask backfill")?;
        let stderr_pipe = child.stderr.take().context("stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr_pipe), &mut text);
            text
        });
        let mut run = Run {
            results: BTreeMap::new(),
            lines: Vec::new(),
            stderr: String::new(),
        };
        let mut interrupted = false;
        for line in BufReader::new(child.stdout.take().context("stdout")?).lines() {
            let line = line?;
            let value: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("backfill printed a line that is not JSON: {line}"))?;
            let result = value["result"].as_str().unwrap_or("").to_string();
            *run.results.entry(result).or_default() += 1;
            run.lines.push(value);
            if let Some(after) = interrupt_after
                && !interrupted
                && run.count("indexed") >= after
            {
                let group = format!("-{}", child.id());
                let status = std::process::Command::new("kill")
                    .args(["-INT", "--", &group])
                    .status()
                    .context("kill -INT")?;
                ensure!(status.success(), "kill -INT {group}: {status}");
                interrupted = true;
            }
        }
        let status = child.wait()?;
        run.stderr = stderr.join().unwrap_or_default();
        if interrupt_after.is_some() {
            ensure!(
                interrupted && !status.success(),
                "the backfill was not interrupted ({status}, {:?}):\n{}",
                run.results,
                run.stderr
            );
        } else {
            let failed = run.lines.iter().find(|l| l["result"] == "failed");
            ensure!(
                status.success(),
                "cargo xtask backfill failed ({status}, {:?}; first failure: {failed:?}):\n{}",
                run.results,
                run.stderr
            );
        }
        Ok(run)
    }

    /// Invocations the interrupted backfill left running finish before the next run counts.
    fn wait_for_idle(&mut self) -> anyhow::Result<()> {
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(self.cx.args.wait_secs);
        while !self
            .cx
            .emulator
            .wait_idle(std::time::Duration::from_millis(500))
        {
            self.generator.process.check_alive()?;
            ensure!(
                std::time::Instant::now() < deadline,
                "the generator was still busy after the interrupted backfill"
            );
        }
        Ok(())
    }
}

/// The layer every backfilled image shares, above the minimum layer size.
fn base_layer(seed: u64) -> anyhow::Result<Layer> {
    let size = MIN_LAYER_SIZE as usize * 22 / 10;
    let layer = gzip_tar_layer(&[
        Entry::Dir("base/".into()),
        Entry::Bytes("base/lib.so".into(), content(seed ^ 0xbac0, size)),
    ])?;
    ensure!(
        layer.gzip.len() as u64 >= MIN_LAYER_SIZE,
        "the shared layer is only {} bytes",
        layer.gzip.len()
    );
    Ok(layer)
}
