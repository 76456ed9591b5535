//! Test support shared by the library's unit tests and, by path from `tests/common`, by the
//! integration tests: std only, no `crate::` paths.

pub(crate) mod cc;
pub(crate) mod http;
pub(crate) mod sparse;
