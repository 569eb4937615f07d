//! Generates `include/olreg.h` from `src/ffi` with cbindgen and gives the
//! shared library its SONAME.
//!
//! The header is committed; CI regenerates it and fails on any difference, so
//! a change to the C ABI is always visible in review.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets this");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets this");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets this");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets this");

    // The SONAME carries the ABI generation: bumped only on an incompatible change.
    // While the major version is 0 the minor version is the ABI generation.
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major.clone()
    };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libolreg.so.{abi}");
    }

    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/status_table.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=OLREG_SKIP_HEADER");
    if env::var_os("OLREG_SKIP_HEADER").is_some() {
        return;
    }

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    config.after_includes = Some(format!(
        "\n#define OLREG_VERSION \"{version}\"\n\
         #define OLREG_VERSION_MAJOR {major}\n\
         #define OLREG_VERSION_MINOR {minor}\n\
         #define OLREG_VERSION_PATCH {patch}\n{}",
        status_defines()
    ));
    // Only src/ffi is the C ABI: parse it alone, so nothing else leaks in.
    let header = cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("the C ABI in src/ffi is expressible in C");
    header.write_to_file(crate_dir.join("include/olreg.h"));
}

// The status table, expanded into the header's constants (the crate expands
// the same table into `olreg::Status` and the Rust `OLREG_*` constants).
macro_rules! statuses {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $c_name:ident, $text:literal; )*) => {
        /// Each status: C name, number, doc lines.
        const STATUSES: &[(&str, i32, &[&str])] = &[$( (stringify!($c_name), $code, &[$($doc),*]), )*];
    };
}

include!("src/status_table.rs");

/// `#define OLREG_<NAME> <n>` for every status, documented as cbindgen
/// documents the other constants.
fn status_defines() -> String {
    let mut out = String::from("\n/* Statuses (olreg_status values). */\n");
    for (name, code, doc) in STATUSES {
        out.push_str("\n/*\n");
        for line in *doc {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!(" */\n#define {name} {code}\n"));
    }
    out
}
