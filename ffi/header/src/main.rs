//! Writes `include/c2d.h` from the `c2d-ffi` crate with the pinned cbindgen of this crate,
//! following `ffi/cbindgen.toml`. Run it with `make header`; CI runs it and fails when the
//! committed header differs.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| manifest.join("../.."));
    let crate_dir = root.join("ffi");
    let out = root.join("include/c2d.h");
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("c2d-ffi-header: ffi/cbindgen.toml: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&out);
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("c2d-ffi-header: {e}");
            ExitCode::FAILURE
        }
    }
}
