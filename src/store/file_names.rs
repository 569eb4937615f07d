//! The parts of a model name as file names under `manifests/`, by the rules
//! of the platform's file system.
//!
//! On Unix a part is its own file name (a validated part is always a
//! single plain component). Windows is stricter, and Ollama, which joins
//! the parts into a path as they are, fails there on the names below:
//! - `:` separates a file's name from a stream name, so a host's port
//!   separator (`127.0.0.1:5000`) is written `+` (which no part may hold,
//!   so the file name reads back unambiguously);
//! - `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9` and `LPT0`–`LPT9`, with or
//!   without an extension, name devices, and a trailing `.` is dropped by
//!   every Windows program: such parts are refused with the reason.

use std::borrow::Cow;

/// The file name for a name part on this platform; `Err` says why the part
/// cannot be one.
pub(crate) fn file_name(part: &str) -> Result<Cow<'_, str>, String> {
    if cfg!(windows) {
        windows_file_name(part).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(part))
    }
}

/// The name part a file name under `manifests/` stands for on this platform.
pub(crate) fn part(file_name: &str) -> Cow<'_, str> {
    if cfg!(windows) {
        Cow::Owned(file_name.replace(WINDOWS_COLON, ":"))
    } else {
        Cow::Borrowed(file_name)
    }
}

/// What `:` is written as on Windows.
const WINDOWS_COLON: char = '+';

/// Names Windows gives to devices, in every directory.
const WINDOWS_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// The Windows file name of a validated name part (letters, digits and
/// `_.:-`), or why there is none. Pure, so every platform tests it.
fn windows_file_name(part: &str) -> Result<String, String> {
    let stem = part.split('.').next().unwrap_or(part);
    let numbered = |prefix: &str| {
        stem.len() == 4
            && stem[..3].eq_ignore_ascii_case(prefix)
            && stem.as_bytes()[3].is_ascii_digit()
    };
    if WINDOWS_DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d))
        || numbered("COM")
        || numbered("LPT")
    {
        return Err(format!(
            "{part:?} names a device on Windows (CON, PRN, AUX, NUL, COM0-9 and LPT0-9 \
             cannot be file names there)"
        ));
    }
    if part.ends_with('.') {
        return Err(format!(
            "{part:?} ends in '.', which Windows drops from file names"
        ));
    }
    Ok(part.replace(':', &WINDOWS_COLON.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_writes_the_port_separator_as_plus_and_reads_it_back() {
        assert_eq!(
            windows_file_name("127.0.0.1:5000").as_deref(),
            Ok("127.0.0.1+5000")
        );
        assert_eq!(
            windows_file_name("registry.ollama.ai").as_deref(),
            Ok("registry.ollama.ai")
        );
        assert_eq!(
            "127.0.0.1+5000".replace(WINDOWS_COLON, ":"),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn windows_refuses_device_names_and_a_trailing_dot() {
        for device in [
            "con", "CON", "Nul", "aux.q4", "prn.v1.2", "COM1", "lpt9", "com0",
        ] {
            let err = windows_file_name(device).unwrap_err();
            assert!(err.contains("device"), "{device}: {err}");
        }
        assert!(windows_file_name("v1.").unwrap_err().contains("drops"));
        // Near misses are ordinary names.
        for fine in [
            "console",
            "com10",
            "lpt",
            "nul_",
            "auxiliary",
            "con-v1",
            "v1.0",
        ] {
            assert_eq!(windows_file_name(fine).as_deref(), Ok(fine), "{fine}");
        }
    }

    #[test]
    fn this_platform_maps_both_ways() {
        for p in ["127.0.0.1:5000", "library", "llama3.2", "latest"] {
            let file = file_name(p).unwrap();
            assert_eq!(part(&file), p);
            assert!(!file.contains(':') || cfg!(unix), "{file}");
        }
    }
}
