//! Benchmarks of the pure kernels behind hab's tasks and wire codec.
//!
//! - `factorial`: prime swing and product tree at 1k/10k/100k, naive loop at 1k/10k (the digit count of
//!   100000! is what `hab.factorial(100000)` computes: `factorial/digits/100000`).
//! - `write_zeros`: 1 MB and 100 MB into a temporary directory (set `TMPDIR` to measure
//!   another disk), including `fdatasync` and the delete.
//! - `codec`: encode and decode a task message, serialize and parse a result record.
//!
//! Heavy cases use 10 flat samples so `cargo bench` finishes in a few minutes on 2 cores;
//! `cargo test --benches` runs each case once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use hab::protocol::{ResultRecord, TaskMessage, decode, encode};
use hab::tasks::{factorial, write_zeros};
use serde_json::json;

fn bench_factorial(c: &mut Criterion) {
    let mut group = c.benchmark_group("factorial");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for n in [1_000u64, 10_000, 100_000] {
        group.bench_with_input(BenchmarkId::new("tree", n), &n, |b, &n| {
            b.iter(|| factorial::factorial_tree(black_box(n)))
        });
        group.bench_with_input(BenchmarkId::new("swing", n), &n, |b, &n| {
            b.iter(|| factorial::factorial_swing(black_box(n)))
        });
    }
    for n in [1_000u64, 10_000] {
        group.bench_with_input(BenchmarkId::new("naive", n), &n, |b, &n| {
            b.iter(|| factorial::factorial_naive(black_box(n)))
        });
    }
    let n = 100_000u64;
    group.bench_with_input(BenchmarkId::new("digits", n), &n, |b, &n| {
        b.iter(|| factorial::factorial_digits(black_box(n)))
    });
    group.finish();
}

fn bench_write_zeros(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("create a temporary directory for the benchmark");
    let path = dir.path().join("zeros");
    let mut group = c.benchmark_group("write_zeros");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (label, nbytes) in [("1MB", 1_000_000u64), ("100MB", 100_000_000)] {
        group.throughput(Throughput::Bytes(nbytes));
        group.bench_with_input(BenchmarkId::from_parameter(label), &nbytes, |b, &nbytes| {
            b.iter(|| write_zeros::write_zeros(&path, black_box(nbytes)).expect("write zeros"))
        });
    }
    group.finish();
}

fn bench_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let msg = TaskMessage::new("hab.factorial", json!([100000]));
    group.bench_function("encode", |b| b.iter(|| encode(black_box(&msg))));

    let (body, props) = encode(&msg);
    group.bench_function("decode", |b| {
        b.iter(|| decode(black_box(&body), black_box(&props)).expect("decode"))
    });

    let record = ResultRecord::success(&msg.id, json!(456574));
    group.bench_function("result_to_json", |b| {
        b.iter(|| black_box(&record).to_json())
    });

    let stored = record.to_json();
    group.bench_function("result_parse", |b| {
        b.iter(|| ResultRecord::parse(black_box(stored.as_bytes())).expect("parse"))
    });
    group.finish();
}

criterion_group!(benches, bench_factorial, bench_write_zeros, bench_codec);
criterion_main!(benches);
