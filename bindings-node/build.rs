//! Links the addon the way Node.js loads it (symbols resolved from the process at load).
fn main() {
    napi_build::setup();
}
