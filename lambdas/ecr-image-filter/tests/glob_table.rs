//! Our glob matcher against answers produced by CPython's `fnmatch.fnmatchcase` (see
//! fixtures/gen_fnmatch.py, which generated fixtures/fnmatch_cases.json).

use ecr_image_filter::glob::Glob;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    generated_by: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    pattern: String,
    name: String,
    expected: bool,
}

#[test]
fn matches_python_fnmatchcase() {
    let fixture: Fixture = serde_json::from_slice(include_bytes!("fixtures/fnmatch_cases.json"))
        .expect("fixture parses");
    assert!(fixture.generated_by.contains("fnmatch.fnmatchcase"));
    assert!(fixture.cases.len() >= 30, "at least 30 rows");
    assert!(fixture.cases.iter().any(|c| c.expected) && fixture.cases.iter().any(|c| !c.expected));
    let failures: Vec<String> = fixture
        .cases
        .iter()
        .filter(|c| Glob::new(&c.pattern).matches(&c.name) != c.expected)
        .map(|c| {
            format!(
                "pattern {:?} name {:?}: python says {}",
                c.pattern, c.name, c.expected
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "mismatches with Python:\n{}",
        failures.join("\n")
    );
}
