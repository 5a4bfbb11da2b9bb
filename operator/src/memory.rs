//! The operator's memory allocator: jemalloc, set up to hand back what a burst of work freed.
//!
//! Becoming leader (a restart, a failover) means listing every Incident and Remediation and
//! reconciling each of them at once: pages of JSON decoded, every object read, most of it freed
//! again, while the caches' small long-lived objects are allocated in between. glibc's malloc
//! keeps the freed space inside pages still partly in use, per arena, so the process stayed
//! near the burst's peak: even with `malloc_trim` after each burst and two arenas, about 2 KiB
//! of holes per cached Incident and Remediation (`salve-sandbox bench`, heaptrack). jemalloc
//! keeps small objects of one size together in slabs of their own and large buffers apart, so
//! a burst's buffers leave whole pages behind, which it returns to the operating system.
//!
//! How it is set (`malloc_conf`, read by jemalloc when it starts; see jemalloc(3), "TUNING"):
//! - `background_thread:true`: one thread of jemalloc's own returns unused pages on time, also
//!   when the operator is idle afterwards (otherwise only allocations drive the purging);
//! - `dirty_decay_ms:1000,muzzy_decay_ms:0`: freed pages go back within about a second, and
//!   at once rather than in the two steps MADV_FREE would take (pages it frees lazily still
//!   count in RSS until the kernel needs them);
//! - `narenas:2`: the operator waits on the network on a handful of threads; more arenas would
//!   only each hold their own free space.

/// Set with `#[global_allocator]` in each operator binary (`operator`, the bench's operator).
pub use tikv_jemallocator::Jemalloc as Allocator;

/// jemalloc's options, as the C string it looks for under the name `malloc_conf`
/// (`_rjem_`-prefixed in tikv-jemalloc-sys's build).
#[repr(transparent)]
pub struct MallocConf(*const std::ffi::c_char);

// SAFETY: a pointer to a constant C string, never written through.
unsafe impl Sync for MallocConf {}

#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: MallocConf = MallocConf(c"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());
