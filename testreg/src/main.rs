//! `olreg-testreg`: the test peers as a program, for the C, Go and Python tests
//! and the README demo.
//!
//! `olreg-testreg serve ...` runs the Ollama-protocol test registry (see
//! `cli_serve`); `olreg-testreg distribution ...` runs Docker Distribution with
//! a chosen auth mode, plus its token server (see `cli_distribution`).

mod cli_distribution;
mod cli_serve;

fn main() {
    let mut args = std::env::args().skip(1);
    let code = match args.next().as_deref() {
        Some("serve") => cli_serve::main(args.collect()),
        Some("distribution") => cli_distribution::main(args.collect()),
        _ => {
            eprintln!(
                "usage: olreg-testreg serve [OPTIONS] | olreg-testreg distribution [OPTIONS]"
            );
            2
        }
    };
    std::process::exit(code);
}
