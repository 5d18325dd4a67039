//! Integration tests of the `ci` crate: the workspace tidy checks, the fuzz targets' bounded runs and
//! the benchmarks' smoke run.

mod bench;
mod fuzz;
mod tidy;
