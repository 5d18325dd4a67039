//! Integration tests of the `ci` crate: the workspace tidy checks.

mod tidy;
