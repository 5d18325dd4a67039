//! Integration tests of the `ci` crate: the workspace tidy checks and the fuzz targets' bounded runs.

mod fuzz;
mod tidy;
