//! The Terraform module's dashboard (`terraform/dashboard.tf`) shows what this generator emits:
//! its list of metric names is [`metrics::METRICS`], its `LayersLeftOut` reasons are
//! [`LeftOut::ALL`], and its default namespace is [`metrics::DEFAULT_NAMESPACE`].

use std::collections::BTreeSet;
use std::path::Path;

use soci_index_generator::metrics;
use soci_index_generator::pipeline::LeftOut;

fn dashboard_tf() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../terraform/dashboard.tf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The quoted strings of the one-line list `  <local> = [...]` in `text`.
fn list(text: &str, local: &str) -> BTreeSet<String> {
    let line = text
        .lines()
        .find(|l| {
            l.trim_start()
                .strip_prefix(local)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .unwrap_or_else(|| panic!("dashboard.tf has no `{local} = [...]`"));
    let inner = line
        .split_once('[')
        .and_then(|(_, rest)| rest.rsplit_once(']'))
        .map(|(inner, _)| inner)
        .unwrap_or_else(|| panic!("`{local}` is not a one-line list: {line}"));
    inner
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

#[test]
fn the_dashboard_lists_exactly_the_metrics_the_generator_emits() {
    let text = dashboard_tf();
    let emitted: BTreeSet<String> = metrics::METRICS.iter().map(|m| m.name.into()).collect();
    assert_eq!(list(&text, "dashboard_metrics"), emitted);
    let reasons: BTreeSet<String> = LeftOut::ALL.iter().map(|r| r.as_str().into()).collect();
    assert_eq!(list(&text, "dashboard_left_out_reasons"), reasons);
    assert!(
        text.contains(&format!(
            "coalesce(var.metrics_namespace, \"{}\")",
            metrics::DEFAULT_NAMESPACE
        )),
        "dashboard.tf's default namespace is not {}",
        metrics::DEFAULT_NAMESPACE
    );
}
