//! Runs every fuzz target's seed inputs and every input a fuzzer once found a fault with
//! (`fuzz/regressions/<target>/`) through the hub, as `cargo fuzz` would: each must be
//! handled without a panic and without a session left open.
//!
//! With `C2D_FUZZ_SEEDS=<dir>` set it also writes the seeds to `<dir>/<target>/` (what
//! `scripts/fuzz.sh` starts each corpus from).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use c2d_hub::fuzzing::{seeds, FuzzHub, TARGETS};

/// The system allocator, noting the largest single allocation: what the fuzzer reports as
/// out-of-memory (a peer's declared size allocated before it is checked) shows up here even
/// when the machine could have given the memory.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No input may make the hub allocate more than this at once (frames are at most 64 KiB).
const MAX_ALLOCATION: usize = 16 << 20;

/// Runs one input and checks its largest allocation.
fn run(hub: &FuzzHub, target: &str, name: &str, bytes: &[u8]) {
    LARGEST.store(0, Ordering::Relaxed);
    hub.run(target, bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= MAX_ALLOCATION,
        "{target}/{name}: the hub allocated {largest} bytes at once"
    );
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

#[test]
fn seeds_and_past_findings_are_handled() {
    let hub = FuzzHub::new();
    let seeds = seeds();
    let write_to = std::env::var_os("C2D_FUZZ_SEEDS").map(PathBuf::from);
    for (target, name, bytes) in &seeds {
        assert!(TARGETS.contains(target), "seed for unknown target {target}");
        let before = hub.queued();
        run(&hub, target, name, bytes);
        // the handshakes put in front of the inputs do authenticate: the seeds that send a
        // message (after SASL PLAIN) get it queued
        if matches!(*target, "amqp_session" | "amqp_c2d_message") {
            assert_eq!(
                hub.queued(),
                before + 1,
                "seed {target}/{name} queued nothing"
            );
        }
        if let Some(dir) = &write_to {
            let dir = dir.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut findings = 0;
    for target in TARGETS {
        let dir = regressions_dir().join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            run(&hub, target, &name, &bytes);
            findings += 1;
        }
    }
    for target in TARGETS {
        assert!(
            seeds.iter().any(|(t, _, _)| t == target),
            "target {target} has no seed"
        );
    }
    println!(
        "fuzz regressions: {} seeds and {findings} past findings over {} targets handled",
        seeds.len(),
        TARGETS.len()
    );
}
