//! staticpack: reproducible static builds packed into minimal OCI images.
//!
//! The pipeline, one module a stage:
//! `recipe` → `build` → `verify` → `image` (layers, config, layout) → `run` (proof) → push.
//! The core (recipe, verify, image assembly) spawns no process and touches no network;
//! processes live in `build` and `run`, the network in `registry`.

#![deny(unsafe_code)]

pub mod build;
pub mod confine;
pub mod digest;
pub mod fsio;
pub mod image;
pub mod pipeline;
pub mod provenance;
pub mod recipe;
pub mod registry;
pub mod repro;
pub mod run;
#[cfg(test)]
pub(crate) mod test_support;
pub mod verify;
pub mod workdir;
