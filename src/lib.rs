//! staticpack: reproducible static builds packed into minimal OCI images.
//!
//! The pipeline, one module a stage:
//! `recipe` → `build` → `verify` → `image` (layers, config, layout) → `run` (proof) → push.
//! The core (recipe, verify, image assembly) spawns no process and touches no network;
//! processes live in `build` and `run`, the network in `registry`.

#![deny(unsafe_code)]
// The public API is what this file exposes; anything else is crate-private, and says so.
#![warn(unreachable_pub)]

// The stages, the public face of the library.
pub mod build;
pub mod cache;
pub mod image;
pub mod pipeline;
pub mod recipe;
pub mod registry;
pub mod run;
mod source;
pub mod supply;
pub use source::SourceError;
pub mod verify;

// Shared values of the public API.
pub mod digest;
pub use fsio::IoError;
pub use provenance::Provenance;
pub use repro::{Difference, ReproError};
pub use workdir::WorkDir;

// Plumbing.
mod confine;
mod fsio;
mod provenance;
mod repro;
#[cfg(test)]
mod test_support;
mod workdir;
