//! What every fuzz target runs: the input through [`c2d_hub::fuzzing`] on one hub per process.

use std::sync::OnceLock;

use c2d_hub::fuzzing::FuzzHub;

/// Runs `data` through target `name` on this process's hub (started at the first input).
pub fn run(name: &str, data: &[u8]) {
    static HUB: OnceLock<FuzzHub> = OnceLock::new();
    HUB.get_or_init(FuzzHub::new).run(name, data);
}
