//! Prints the readings a simulator backfill produces, one per line, in InfluxDB line protocol (the
//! default) or in the JSON wire format: what `simulator --sensors N --interval 1 --from T` emits in
//! its first `ticks` ticks (same catalogue, same seed, same sequence numbers). The benchmarks use it
//! to feed InfluxDB pre-encoded lines (the ingest ceiling) and the peers the same payloads.
//! Usage: cargo run --release -p smartcity-model --example backfill_lines -- SENSORS TICKS FROM [json]

use chrono::{DateTime, Duration, Utc};
use smartcity_model::{codec, Catalogue, ReadingStream};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: backfill_lines SENSORS TICKS FROM(RFC 3339) [json]";
    let (Some(sensors), Some(ticks), Some(from)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<i64>().ok()),
        args.get(2).and_then(|a| DateTime::parse_from_rfc3339(a).ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let json = args.get(3).is_some_and(|a| a == "json");
    let seed = 42; // the simulator's default
    let mut stream = ReadingStream::new(Catalogue::generated(sensors, seed).expect("a valid sensor count"), seed);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut batch, mut line) = (Vec::new(), String::new());
    for tick in 0..ticks {
        batch.clear();
        stream.tick_into(from.with_timezone(&Utc) + Duration::seconds(tick), &mut batch);
        for r in &batch {
            if json {
                out.write_all(&codec::json::encode(r)).and_then(|()| out.write_all(b"\n")).expect("stdout");
            } else {
                line.clear();
                codec::line_protocol::encode(r, &mut line);
                out.write_all(line.as_bytes()).expect("stdout");
            }
        }
    }
}
