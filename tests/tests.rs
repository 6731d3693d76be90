//! The one integration-test binary: every test drives the real `foldersync` binary on real
//! temporary directories. The harness lives in `util.rs`.

mod util;

mod attack3;
mod attack4;
mod attack5;
mod attacks;
mod cli;
mod config_file;
mod converge;
mod edges;
mod fanout;
mod fidelity;
mod filters;
mod generated;
mod guards;
mod metrics;
mod model;
mod operations;
mod order;
mod output;
mod pass;
mod remote;
mod review17;
mod review18;
mod review18r;
mod safety;
mod signals;
mod status;
mod systemd;
mod trust;
mod validation;
mod watch;
mod writers;
