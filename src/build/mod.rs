//! Toolchains.
