//! `salve-bench-baseline`: the bare kube-rs controller `salve-sandbox bench` compares the
//! operator with (see `bench::processes`).

use salve_sandbox::bench::processes::{baseline_process, process_main};

fn main() {
    std::process::exit(process_main(baseline_process));
}
