//! Simulator hot path: readings generated and JSON-encoded per second on one core, and bytes of
//! memory per simulated sensor at 100,000 sensors. Run with `make bench` (bench/run.sh also runs
//! the Python peer in the same run and prints the ratios). Prints `key value` lines.

use chrono::{Duration, TimeZone, Utc};
use smartcity_model::codec::json;
use smartcity_model::{Catalogue, ReadingStream};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, to measure what the sensors really cost.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let sensors = 100_000;
    let before = LIVE.load(Ordering::Relaxed);
    let stream = ReadingStream::new(Catalogue::generated(sensors, 1).unwrap(), 1);
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    println!("memory_bytes_per_sensor {:.1}", bytes as f64 / sensors as f64);

    // Generate + encode ticks of all 100,000 sensors for ~3 s.
    let mut stream = stream;
    let mut batch = Vec::with_capacity(sensors);
    let mut buf = Vec::with_capacity(512);
    let start_t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let started = Instant::now();
    let (mut readings, mut encoded_bytes, mut tick) = (0u64, 0u64, 0i64);
    while started.elapsed().as_secs_f64() < 3.0 {
        batch.clear();
        stream.tick_into(start_t + Duration::seconds(5 * tick), &mut batch);
        for r in &batch {
            buf.clear();
            json::encode_into(r, &mut buf);
            encoded_bytes += buf.len() as u64;
        }
        readings += batch.len() as u64;
        tick += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("readings_per_second_one_core {:.0}", readings as f64 / secs);
    println!("average_json_bytes {:.0}", encoded_bytes as f64 / readings as f64);
}
