//! Links the `git-spectra` binary as a position-dependent executable.
//!
//! A position-independent executable has its ~36,000 pointer relocations applied by the
//! dynamic loader at every start, which writes (and so copies) every page that holds them:
//! about 160 page faults and a millisecond of the post-commit hook's budget on a virtual machine.
//! Linked without PIE the linker resolves them once, and start-up touches only what it runs.
//! The cost is address-space randomisation of the executable's own code (libraries, heap and
//! stack are still randomised); Go, for one, makes the same choice by default. Only the binaries
//! are affected: the library, tests and proc-macros build as usual.
//!
//! Linux only: `-no-pie` is the GNU and LLVM linker drivers' spelling there; other platforms
//! link as their toolchains do by default.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
