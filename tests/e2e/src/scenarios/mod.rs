//! The checks of one architecture's pass, one file per group: [`start`] (the deployed
//! configuration, the bootstraps started), [`indexing`] (the push event indexed, the SOCI graph
//! verified), [`negatives`] (what must not index) and [`registry_failure`] (a failure surfaces as
//! a failed invocation), [`image_sources`] (pull through cache and replication events, the index
//! tag cleanup), [`wait`] (index before deploy: `cargo xtask index --wait`), [`backfill`]
//! (images already in ECR: `cargo xtask backfill`). This
//! file holds what they share: delivering an event as EventBridge
//! does and reading the emulator's records of what ran.

mod backfill;
mod image_sources;
mod indexing;
mod negatives;
mod registry_failure;
mod start;
mod wait;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use soci_core::oci::MEDIA_TYPE_OCI_INDEX;
use soci_index_generator::RegistryClient;

use crate::emulator::Record;
use crate::stack::{self, Arch, AwsSide, Deployment, FunctionConfig, LambdaProcess, Phases};
use crate::{Ctx, INCLUDED_REPO, INDEX_TAG_SUFFIX, image};

/// One function of one pass: its deployed configuration and its running bootstrap.
pub(super) struct Running {
    config: FunctionConfig,
    process: LambdaProcess,
    bootstrap: PathBuf,
}

/// A delivered event's records, split by function.
struct Delivery {
    filter: Vec<Record>,
    generator: Vec<Record>,
}

/// How an event is matched against the rule's pattern.
enum Matcher {
    /// EventBridge's `TestEventPattern`.
    Api,
    /// moto's `EventPattern` (Python), when the endpoint is moto.
    Moto(PathBuf),
}

impl Matcher {
    fn name(&self) -> &'static str {
        match self {
            Self::Api => "EventBridge TestEventPattern",
            Self::Moto(_) => "moto's EventPattern; moto does not implement TestEventPattern",
        }
    }
}

fn test_event_pattern(
    cx: &Ctx<'_>,
    pattern: &str,
    event: &serde_json::Value,
) -> anyhow::Result<bool> {
    let out = cx.rt.block_on(async {
        cx.events
            .test_event_pattern()
            .event_pattern(pattern)
            .event(event.to_string())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "TestEventPattern: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )
            })
    })?;
    Ok(out.result())
}

const MOTO_MATCH_PY: &str = "import json, sys\n\
from moto.events.models import EventPattern\n\
print(json.dumps(EventPattern.load(sys.argv[1]).matches_event(json.loads(sys.argv[2]))))\n";

fn moto_matches(
    python: &std::path::Path,
    pattern: &str,
    event: &serde_json::Value,
) -> anyhow::Result<bool> {
    let output = std::process::Command::new(python)
        .args(["-c", MOTO_MATCH_PY, pattern, &event.to_string()])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {} with moto's EventPattern", python.display()))?;
    ensure!(
        output.status.success(),
        "moto's EventPattern failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    match String::from_utf8_lossy(&output.stdout).trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => bail!("moto's EventPattern printed {other:?}"),
    }
}

/// Picks the matcher: `TestEventPattern` when it answers a trivially matching probe with true.
fn choose_matcher(cx: &Ctx<'_>, account: &str) -> anyhow::Result<Matcher> {
    let probe = image::push_event(
        account,
        &cx.region,
        INCLUDED_REPO,
        "sha256:0",
        "probe",
        MEDIA_TYPE_OCI_INDEX,
    );
    if test_event_pattern(cx, r#"{"source":["aws.ecr"]}"#, &probe)? {
        return Ok(Matcher::Api);
    }
    ensure!(
        matches!(cx.aws, AwsSide::Moto(_)),
        "{}: TestEventPattern does not match a trivially matching event (is it implemented there?)",
        cx.aws.describe()
    );
    let python = test_support::find_binary("python3").map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "moto does not implement TestEventPattern: matching with moto's own EventPattern instead"
    );
    Ok(Matcher::Moto(python))
}

struct Pass<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    matcher: Matcher,
    arch: Arch,
    deployment: &'c Deployment,
    filter: Running,
    generator: Running,
    pattern: String,
    account: String,
    launcher: Option<(PathBuf, Vec<String>)>,
}

/// One architecture's pass: start its functions, then every scenario, each a timed phase.
pub fn run_pass(
    cx: &mut Ctx<'_>,
    phases: &mut Phases,
    checks: &mut Vec<String>,
    arch: Arch,
    deployment: &Deployment,
) -> anyhow::Result<()> {
    let launcher = stack::launcher(arch)?;
    let how = if launcher.is_some() {
        "under qemu"
    } else {
        "natively"
    };
    let mut pass = phases.run(
        &format!("{arch}: deployed configuration, start the packaged bootstraps {how}"),
        || start::start_pass(cx, arch, deployment, launcher.clone(), checks),
    )?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let tag = format!("v{}-{}", seed / 1_000_000_000, arch.tag());
    let index_tag = format!("{tag}{INDEX_TAG_SUFFIX}");

    let (image, index_digest) = phases.run(
        &format!(
            "{arch}: push {INCLUDED_REPO}:{tag}, deliver the push event, wait for {index_tag}"
        ),
        || pass.positive(&tag, seed, checks),
    )?;
    phases.run(
        &format!("{arch}: verify the SOCI graph of {index_tag}"),
        || pass.verify_graph(&tag, &image, &index_digest, checks),
    )?;
    phases.run(
        &format!(
            "{arch}: negative paths (repeat, -soci push, untagged, excluded repository, rule)"
        ),
        || pass.negatives(&tag, &image, &index_digest, seed, checks),
    )?;
    phases.run(
        &format!(
            "{arch}: every way an image lands (pull through cache, replication) and the index tag cleanup"
        ),
        || pass.image_sources(&tag, &image, seed, checks),
    )?;
    // Before the registry failure, which leaves the generator pointed at a dead registry.
    phases.run(
        &format!("{arch}: index before deploy (cargo xtask index --wait)"),
        || pass.index_before_deploy(seed, checks),
    )?;
    // Once, natively: it invokes the generator a few hundred times.
    if launcher.is_none() {
        phases.run(
            &format!("{arch}: backfill images already in ECR (cargo xtask backfill)"),
            || pass.backfill(seed, checks),
        )?;
    }
    phases.run(
        &format!("{arch}: registry failure surfaces as a failed invocation"),
        || pass.registry_failure(&tag, &image, checks),
    )?;
    Ok(())
}

fn status_of(record: &Record) -> String {
    record
        .json()
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string()
}

fn describe(record: &Record) -> String {
    format!(
        "{} ({:?} invocation {}) attempt {} {}: {}",
        record.function,
        record.invocation_type,
        record.request_id,
        record.attempt,
        if record.outcome.is_success() {
            "succeeded"
        } else {
            "FAILED"
        },
        String::from_utf8_lossy(record.outcome.body())
    )
}

impl Pass<'_, '_> {
    fn registry_client(&self) -> anyhow::Result<RegistryClient> {
        self.cx.registry.client()
    }

    /// Replaces the generator's process with one started with its deployed environment (reading
    /// from `registry_override` when given), less the variables `drop` refuses, logging to
    /// `log_name` beside its log; the old process is stopped, by pid, when replaced.
    fn restart_generator_with(
        &mut self,
        registry_override: Option<&str>,
        drop: impl Fn(&str) -> bool,
        log_name: &str,
    ) -> anyhow::Result<()> {
        let runtime_api = self.generator.process_runtime_api(self.cx)?;
        let mut env = start::lambda_env(
            self.cx,
            &self.generator.config,
            &runtime_api,
            &self.generator.bootstrap,
            registry_override,
        )?;
        env.retain(|(k, _)| !drop(k));
        let log = self.generator.process.log.with_file_name(log_name);
        self.generator.process = LambdaProcess::start(
            &self.generator.config.name,
            &self.generator.bootstrap,
            self.launcher.as_ref(),
            &env,
            log,
        )?;
        Ok(())
    }

    /// Does the deployed rule match `event`? EventBridge's `TestEventPattern`, or, where the
    /// endpoint is our moto (whose `TestEventPattern` is an unimplemented stub that answers
    /// nothing), moto's own matcher, the code its `PutEvents` routes events with.
    fn rule_matches(&self, event: &serde_json::Value) -> anyhow::Result<bool> {
        match &self.matcher {
            Matcher::Api => test_event_pattern(self.cx, &self.pattern, event),
            Matcher::Moto(python) => moto_matches(python, &self.pattern, event),
        }
    }

    /// Delivers the push event of the index `digest` as `<included repository>:<tag>` and
    /// checks that the filter invoked the generator; `what` names the scenario in errors.
    fn deliver_index_push(
        &mut self,
        digest: &str,
        tag: &str,
        what: &str,
    ) -> anyhow::Result<(serde_json::Value, Delivery)> {
        let event = self.event(INCLUDED_REPO, digest, tag, MEDIA_TYPE_OCI_INDEX);
        let delivery = self.deliver(&event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "invoked",
            "{what}: the filter did not invoke the generator: {}",
            describe(&delivery.filter[0])
        );
        Ok((event, delivery))
    }

    /// The generator ran exactly once for the delivery, successfully.
    fn one_successful_run<'d>(
        &self,
        delivery: &'d Delivery,
        what: &str,
    ) -> anyhow::Result<&'d Record> {
        ensure!(
            delivery.generator.len() == 1,
            "{what}: the generator ran {} times: {:?}",
            delivery.generator.len(),
            delivery.generator.iter().map(describe).collect::<Vec<_>>()
        );
        let run = &delivery.generator[0];
        ensure!(
            run.outcome.is_success(),
            "{what}: the generator failed: {}\ngenerator log:\n{}",
            describe(run),
            stack::tail(&self.generator.process.log, 30)
        );
        Ok(run)
    }

    /// Delivers `event` and checks that the filter skipped it without invoking the generator.
    fn deliver_expecting_skip(
        &mut self,
        event: &serde_json::Value,
        what: &str,
    ) -> anyhow::Result<()> {
        let delivery = self.deliver(event)?;
        ensure!(
            status_of(&delivery.filter[0]) == "skipped",
            "{what}: {}",
            describe(&delivery.filter[0])
        );
        ensure!(
            delivery.generator.is_empty(),
            "{what}: the generator was invoked"
        );
        Ok(())
    }

    /// Checks the rule matches `event`, delivers it to the filter as EventBridge does (async
    /// invoke, 202), waits until the filter and everything it invoked are done.
    fn deliver(&mut self, event: &serde_json::Value) -> anyhow::Result<Delivery> {
        ensure!(
            self.rule_matches(event)?,
            "the rule {} does not match the push event {event}",
            self.deployment.rule_name
        );
        let mark = self.cx.emulator.records().len();
        let response = self.cx.rt.block_on(async {
            self.cx
                .emulator_invoke
                .invoke()
                .function_name(&self.deployment.filter_arn)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "async invoke of the filter: {}",
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    )
                })
        })?;
        ensure!(
            response.status_code() == 202,
            "async invoke of the filter answered {}",
            response.status_code()
        );
        let deadline = Instant::now() + Duration::from_secs(self.cx.args.wait_secs);
        loop {
            if self.cx.emulator.wait_idle(Duration::from_millis(500)) {
                break;
            }
            self.filter.process.check_alive()?;
            self.generator.process.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "the functions were still busy after {} s ({:?});\nfilter log:\n{}\ngenerator log:\n{}",
                    self.cx.args.wait_secs,
                    self.cx.emulator.busy(),
                    stack::tail(&self.filter.process.log, 20),
                    stack::tail(&self.generator.process.log, 20)
                );
            }
        }
        let records: Vec<Record> = self.cx.emulator.records().into_iter().skip(mark).collect();
        let (filter, rest): (Vec<Record>, Vec<Record>) = records
            .into_iter()
            .partition(|r| r.function == self.filter.config.name);
        let (generator, other): (Vec<Record>, Vec<Record>) = rest
            .into_iter()
            .partition(|r| r.function == self.generator.config.name);
        ensure!(
            other.is_empty(),
            "unexpected invocations: {:?}",
            other.iter().map(describe).collect::<Vec<_>>()
        );
        ensure!(
            filter.len() == 1,
            "the filter ran {} times for one event: {:?}",
            filter.len(),
            filter.iter().map(describe).collect::<Vec<_>>()
        );
        ensure!(
            filter[0].outcome.is_success(),
            "the filter failed: {}\nfilter log:\n{}",
            describe(&filter[0]),
            stack::tail(&self.filter.process.log, 20)
        );
        Ok(Delivery { filter, generator })
    }

    fn event(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
        media_type: &str,
    ) -> serde_json::Value {
        image::push_event(
            &self.account,
            &self.cx.region,
            repository,
            digest,
            tag,
            media_type,
        )
    }
}

impl Running {
    /// The Runtime API address the emulator gave this function.
    fn process_runtime_api(&self, cx: &Ctx<'_>) -> anyhow::Result<String> {
        cx.emulator
            .runtime_addr(&self.config.name)
            .with_context(|| format!("{} is not registered in the emulator", self.config.name))
    }
}
