//! The Lambda architectures a release builds, named the ways the tools around them spell them.
//! The one definition for `cargo xtask package`/`publish` and the end-to-end harness.

use serde::{Deserialize, Serialize};

/// A Lambda architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    /// The name Lambda uses (`x86_64`, `arm64`), also in `manifest.json` and the module's
    /// `architecture` input.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The name in `--arch` values, resource prefixes and tags, where `_` is not allowed
    /// everywhere.
    pub fn tag(self) -> &'static str {
        match self {
            Self::X86_64 => "x86-64",
            Self::Arm64 => "arm64",
        }
    }

    /// The rustc target triple (where cargo puts the artifacts).
    pub fn rust_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.lambda_name())
    }
}

/// `--arch`: one architecture or both.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchChoice {
    X86_64,
    Arm64,
    All,
}

impl ArchChoice {
    pub fn arches(self) -> Vec<Arch> {
        match self {
            Self::X86_64 => vec![Arch::X86_64],
            Self::Arm64 => vec![Arch::Arm64],
            Self::All => vec![Arch::X86_64, Arch::Arm64],
        }
    }

    /// The value `--arch` takes for this choice.
    pub fn arg(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::X86_64 => Arch::X86_64.tag(),
            Self::Arm64 => Arch::Arm64.tag(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn arch_args_parse_back() {
        for choice in [ArchChoice::X86_64, ArchChoice::Arm64, ArchChoice::All] {
            assert_eq!(ArchChoice::from_str(choice.arg(), false), Ok(choice));
        }
    }
}
