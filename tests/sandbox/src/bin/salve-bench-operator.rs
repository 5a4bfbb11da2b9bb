//! `salve-bench-operator`: the operator as `salve-sandbox bench` runs it (see `bench::processes`).

use salve_sandbox::bench::processes::{operator_process, process_main};

#[global_allocator]
static ALLOCATOR: operator::memory::Allocator = operator::memory::Allocator;

fn main() {
    std::process::exit(process_main(operator_process));
}
