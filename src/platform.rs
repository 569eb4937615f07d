//! Platforms (`os/architecture[/variant]`, in Go's names): what picks one
//! manifest out of an image index or manifest list.

use std::fmt;

use crate::error::{Error, Result};

/// The longest part of a platform accepted.
const MAX_PART: usize = 32;

/// An operating system, an architecture and optionally a variant, in the
/// names Go and the OCI image spec use (`linux/amd64`, `linux/arm64/v8`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (case-insensitive; `x86_64` and `aarch64`
    /// are taken for `amd64` and `arm64`).
    pub fn parse(text: &str) -> Result<Platform> {
        let bad = |why: &str| {
            Error::invalid_argument(format!(
                "platform {text:?}: {why} (expected os/arch[/variant], e.g. linux/amd64)"
            ))
        };
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("wrong number of parts"));
        }
        if let Some(part) = parts.iter().find(|p| !is_word(p)) {
            return Err(bad(&format!(
                "{part:?} is not a name of at most {MAX_PART} letters, digits, '.', '_' or '-'"
            )));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }

    /// The platform this program runs on.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform::new(os, arch, None)
    }

    /// A platform from an index entry's fields, if they are usable names.
    pub(crate) fn from_entry(
        os: &str,
        architecture: &str,
        variant: Option<&str>,
    ) -> Option<Platform> {
        let variant = variant.filter(|v| !v.is_empty());
        let usable = is_word(os) && is_word(architecture) && variant.is_none_or(is_word);
        usable.then(|| Platform::new(os, architecture, variant))
    }

    fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let architecture = architecture.to_ascii_lowercase();
        let architecture = match architecture.as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            _ => architecture,
        };
        Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant: variant
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase),
        }
    }

    /// `linux`, `darwin`, `windows`, …
    pub fn os(&self) -> &str {
        &self.os
    }

    /// `amd64`, `arm64`, `arm`, …
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// `v7`, `v8`, … when given.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Whether an index entry for `offered` serves a caller asking for
    /// `self`: same OS and architecture, and the variant asked for, if one
    /// was (`arm64` without a variant is `arm64/v8`).
    pub fn accepts(&self, offered: &Platform) -> bool {
        if self.os != offered.os || self.architecture != offered.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(wanted) => {
                self.effective_variant(Some(wanted)) == offered.effective_variant(offered.variant())
            }
        }
    }

    fn effective_variant<'a>(&self, variant: Option<&'a str>) -> Option<&'a str> {
        match (self.architecture.as_str(), variant) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A usable platform part: short, and only characters safe to show.
fn is_word(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_PART
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let p = Platform::parse("Linux/x86_64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(p.variant(), None);
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(
            (p.os(), p.architecture(), p.variant()),
            ("linux", "arm", Some("v7"))
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64"
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd 64",
            "linux/amd64/\u{1b}[31m",
        ] {
            let err = Platform::parse(bad).unwrap_err();
            assert_eq!(err.status(), crate::Status::InvalidArgument, "{bad:?}");
            assert!(err.to_string().contains("os/arch"), "{err}");
        }
        assert!(Platform::parse(&format!("linux/{}", "a".repeat(33))).is_err());
    }

    #[test]
    fn the_host_is_a_valid_platform() {
        let host = Platform::host();
        assert_eq!(Platform::parse(&host.to_string()).unwrap(), host);
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(host.to_string(), "linux/amd64");
    }

    #[test]
    fn matching() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/amd64").accepts(&p("linux/amd64")));
        assert!(
            p("linux/amd64").accepts(&p("linux/amd64/v3")),
            "no variant asked: any"
        );
        assert!(!p("linux/amd64").accepts(&p("linux/arm64")));
        assert!(!p("linux/amd64").accepts(&p("windows/amd64")));
        assert!(
            p("linux/arm64/v8").accepts(&p("linux/arm64")),
            "arm64 is v8"
        );
        assert!(p("linux/arm64").accepts(&p("linux/arm64/v8")));
        assert!(!p("linux/arm/v7").accepts(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v7").accepts(&p("linux/arm")));
        assert!(Platform::from_entry("linux", "amd64", Some("")).is_some());
        assert!(Platform::from_entry("linux\n", "amd64", None).is_none());
    }
}
