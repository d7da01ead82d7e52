//! Benchmarks of the overlap schemes.
//!
//! - `floor/scalar_mult`: constant-time variable-base scalar multiplications on rayon's pool,
//!   the operation a PSI run does four times per item (two per side). A full run cannot beat
//!   `4 × n × (time per multiplication)`.
//! - `floor/hash_to_group`: SHA-512 plus the ristretto255 one-way map, once per item per side.
//! - `floor/decompress`: point decoding, once per item per side.
//! - `psi/full_run`: a whole in-process run (both sides, every message chunked, encoded and
//!   decoded) at `MESHWORK_PSI_N` items per side (default 2^14), 10 % overlap.
//! - `tokens/match`: same-server matching, `MESHWORK_TOKEN_N` items per side (default 2^20),
//!   10 % overlap: both sides' HMAC tokens plus the hash-set intersection; `tokens/two_step_match`
//!   the same with the server's two keyed steps (pseudonym, then partnership token).
//!
//! `MESHWORK_PSI_ONESHOT=1` skips criterion and times one run at `MESHWORK_PSI_N` phase by
//! phase, with its ratio to the scalar-multiplication floor: the way to check 2^20 × 2^20,
//! which takes about a minute per run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use meshwork_overlap::psi::{Full, Initiator, PsiConfig, Responder, SharedOutcome};
use meshwork_overlap::token::{shared_indices, Tokenizer};
use meshwork_overlap::{Identifier, RunId};
use rayon::prelude::*;
use sha2::{Digest, Sha512};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Two sets of `n` company domains sharing `n / 10`.
fn sets(n: usize) -> (Vec<Identifier>, Vec<Identifier>) {
    let overlap = n / 10;
    let a = (0..n)
        .map(|i| Identifier::Domain(format!("company{i}.com")))
        .collect();
    let b = (n - overlap..2 * n - overlap)
        .map(|i| Identifier::Domain(format!("company{i}.com")))
        .collect();
    (a, b)
}

fn random_points(n: usize) -> Vec<RistrettoPoint> {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| RistrettoPoint::random(&mut rng)).collect()
}

fn scalar_mults(k: &Scalar, points: &[RistrettoPoint]) -> Vec<RistrettoPoint> {
    points.par_iter().map(|p| k * p).collect()
}

fn psi_config(n: usize) -> PsiConfig {
    PsiConfig::new(n)
}

/// One full in-process run; returns the initiator's outcome and per-phase times.
fn full_run(
    config: &PsiConfig,
    xs: &[Identifier],
    ys: &[Identifier],
) -> (SharedOutcome, [(&'static str, Duration); 5]) {
    let run_id = RunId::random();
    let t = Instant::now();
    let mut initiator = Initiator::<Full>::new(config, run_id, xs).unwrap();
    let t_init = t.elapsed();
    let t = Instant::now();
    let mut responder = Responder::<Full>::new(config, run_id, ys).unwrap();
    let t_resp = t.elapsed();
    let t = Instant::now();
    for chunk in initiator.query().chunks() {
        responder.receive(&chunk).unwrap();
    }
    let own: Vec<Vec<u8>> = responder.own_points().chunks().collect();
    let mut responder = responder.respond().unwrap();
    let t_respond = t.elapsed();
    let t = Instant::now();
    for chunk in own.iter().cloned().chain(responder.echo().chunks()) {
        initiator.receive(&chunk).unwrap();
    }
    let (outcome, last) = initiator.finish().unwrap();
    let t_finish = t.elapsed();
    let t = Instant::now();
    for chunk in last.chunks() {
        responder.receive(&chunk).unwrap();
    }
    let theirs = responder.finish().unwrap();
    let t_final = t.elapsed();
    assert_eq!(theirs.shared.len(), outcome.shared.len());
    (
        outcome,
        [
            ("initiator: hash + blind own set", t_init),
            ("responder: hash + blind own set", t_resp),
            ("responder: receive msg 1, re-blind", t_respond),
            ("initiator: receive msgs 2+3, re-blind, compare", t_finish),
            ("responder: receive msg 4, compare", t_final),
        ],
    )
}

fn bench_floor(c: &mut Criterion) {
    let n = 4096;
    let points = random_points(n);
    let k = Scalar::random(&mut rand::rngs::OsRng);
    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("scalar_mult", n), |b| {
        b.iter(|| black_box(scalar_mults(&k, black_box(&points))))
    });
    let ids: Vec<Identifier> = (0..n)
        .map(|i| Identifier::Domain(format!("company{i}.com")))
        .collect();
    g.bench_function(BenchmarkId::new("hash_to_group", n), |b| {
        b.iter(|| {
            let v: Vec<RistrettoPoint> = ids
                .par_iter()
                .map(|id| {
                    let mut h = Sha512::new();
                    h.update(b"meshwork-psi-v1");
                    h.update([0u8; 16]);
                    h.update(id.kind_tag());
                    h.update([0]);
                    h.update(id.value().as_bytes());
                    RistrettoPoint::from_hash(h)
                })
                .collect();
            black_box(v)
        })
    });
    let encoded: Vec<CompressedRistretto> = points.iter().map(|p| p.compress()).collect();
    g.bench_function(BenchmarkId::new("decompress", n), |b| {
        b.iter(|| {
            let v: Vec<RistrettoPoint> = encoded
                .par_iter()
                .map(|c| c.decompress().unwrap())
                .collect();
            black_box(v)
        })
    });
    g.bench_function(BenchmarkId::new("compress_single", n), |b| {
        b.iter(|| {
            let v: Vec<CompressedRistretto> = points.par_iter().map(|p| p.compress()).collect();
            black_box(v)
        })
    });
    g.bench_function(BenchmarkId::new("double_and_compress_batch", n), |b| {
        b.iter(|| {
            let v: Vec<CompressedRistretto> = points
                .par_chunks(512)
                .flat_map_iter(RistrettoPoint::double_and_compress_batch)
                .collect();
            black_box(v)
        })
    });
    g.finish();
}

fn bench_full_run(c: &mut Criterion) {
    let n = env_usize("MESHWORK_PSI_N", 1 << 14);
    let (xs, ys) = sets(n);
    let config = psi_config(n);
    let mut g = c.benchmark_group("psi");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("full_run", n), |b| {
        b.iter(|| {
            let (outcome, _) = full_run(&config, &xs, &ys);
            assert_eq!(outcome.shared.len(), n / 10);
        })
    });
    g.finish();
}

fn bench_tokens(c: &mut Criterion) {
    let n = env_usize("MESHWORK_TOKEN_N", 1 << 20);
    let (xs, ys) = sets(n);
    let key = [42u8; 32];
    let mut g = c.benchmark_group("tokens");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2 * n as u64));
    g.bench_function(BenchmarkId::new("match", n), |b| {
        b.iter(|| {
            let tokenizer = Tokenizer::new(&key);
            let a = tokenizer.tokens(&xs);
            let b = tokenizer.tokens(&ys);
            let shared = shared_indices(&a, &b);
            assert_eq!(shared.len(), n / 10);
            black_box(shared)
        })
    });
    // What the server does for CRM records: a pseudonym under the server's identity key, then
    // the partnership's token of the pseudonym (docs/overlap-protocol.md §2).
    g.bench_function(BenchmarkId::new("two_step_match", n), |b| {
        let identity = Tokenizer::new(&[7u8; 32]);
        b.iter(|| {
            let tokenizer = Tokenizer::new(&key);
            let two_step = |ids: &[Identifier]| -> Vec<[u8; 32]> {
                ids.par_iter()
                    .map(|id| tokenizer.token_of(&identity.token(id)))
                    .collect()
            };
            let a = two_step(&xs);
            let b = two_step(&ys);
            let shared = shared_indices(&a, &b);
            assert_eq!(shared.len(), n / 10);
            black_box(shared)
        })
    });
    g.finish();
}

/// CPU time of this process (all threads), from `/proc/self/stat` (Linux; 100 ticks per
/// second). Other processes' load barely changes it, unlike wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `MESHWORK_PSI_ONESHOT=1`: one run at `MESHWORK_PSI_N`, phase by phase, against the floor,
/// in wall time and in CPU time.
fn one_shot() {
    let n = env_usize("MESHWORK_PSI_N", 1 << 14);
    let threads = rayon::current_num_threads();
    let k = Scalar::random(&mut rand::rngs::OsRng);
    let probe = random_points(1 << 15);
    black_box(scalar_mults(&k, &probe)); // warm up
                                         // (wall, cpu) seconds per multiplication on the whole pool.
    let per_mult = || {
        let (t, c) = (Instant::now(), cpu_seconds());
        for _ in 0..2 {
            black_box(scalar_mults(&k, &probe));
        }
        let count = 2.0 * probe.len() as f64;
        (
            t.elapsed().as_secs_f64() / count,
            (cpu_seconds() - c) / count,
        )
    };
    let before = per_mult();
    let (xs, ys) = sets(n);
    let config = psi_config(n);
    let (t, c) = (Instant::now(), cpu_seconds());
    let (outcome, phases) = full_run(&config, &xs, &ys);
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    let after = per_mult();
    assert_eq!(outcome.shared.len(), n / 10);
    let mult_wall = (before.0 + after.0) / 2.0;
    let mult_cpu = (before.1 + after.1) / 2.0;
    println!(
        "{threads} threads; scalar mult: {:.2} µs wall each on the pool (before {:.2}, after {:.2}); \
         {:.2} µs CPU each",
        mult_wall * 1e6,
        before.0 * 1e6,
        after.0 * 1e6,
        mult_cpu * 1e6
    );
    for (name, d) in phases {
        println!("  {name:<48} {:>9.3} s", d.as_secs_f64());
    }
    let mults = (4 * n) as f64;
    println!(
        "full run, {n} × {n} items: wall {wall:.3} s vs floor {:.3} s, ratio {:.3}; \
         CPU {cpu:.2} s vs floor {:.2} s, ratio {:.3}",
        mult_wall * mults,
        wall / (mult_wall * mults),
        mult_cpu * mults,
        cpu / (mult_cpu * mults)
    );
}

fn main() {
    if std::env::var_os("MESHWORK_PSI_ONESHOT").is_some() {
        one_shot();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_floor(&mut c);
    bench_full_run(&mut c);
    bench_tokens(&mut c);
    c.final_summary();
}
