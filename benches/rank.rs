//! Choosing which playbooks a decision is offered (issue 25): the ranking index of 30 and 300
//! generated runbooks (`tests/fixtures/runbooks/`), its build, its JSON size, and the top 5 for
//! "Deploy service to Railway platform", cold (the index read from its cache file) and warm.
//!
//! Run by hand (not in CI): `cargo bench --bench rank`. Everything runs in process through the
//! library, as an activity does before its decision. Each figure is the median of many runs;
//! each size is measured three times, alternately, and the lowest median kept.
//! Targets: top 5 of 300 warm < 10 ms, index build for 300 < 200 ms, 30 → 300 < 5× the time.
//! Results go in docs/performance.md under "Choosing playbooks".

use std::time::{Duration, Instant};

use spectra::registry::rank::{self, Index};
use spectra::registry::{Kind, Layer, Registry, SourceFile};

#[path = "../tests/fixtures/runbooks/mod.rs"]
mod fixture;

const QUERY: &str = "Deploy service to Railway platform";
const LIMIT: usize = 5;

/// The built-in registry plus the `operate` activity and the first `count` runbooks.
fn registry(count: usize) -> Registry {
    let mut sources = builtin_sources();
    sources.push(SourceFile {
        path: ".spectra/registry/activities/operate.yaml".into(),
        kind: Kind::Activity,
        layer: Layer::Repository,
        text: fixture::activity_yaml(),
    });
    for (name, text) in fixture::runbooks(count) {
        sources.push(SourceFile {
            path: format!(".spectra/registry/playbooks/{name}"),
            kind: Kind::Runbook,
            layer: Layer::Repository,
            text,
        });
    }
    Registry::from_sources(sources).unwrap_or_else(|error| panic!("{error}"))
}

fn builtin_sources() -> Vec<SourceFile> {
    spectra::registry::EMBEDDED
        .iter()
        .map(|(path, text)| {
            let kind = if path.ends_with(".md.j2") {
                Kind::Template
            } else if path.contains("/activities/") {
                Kind::Activity
            } else {
                Kind::Playbook
            };
            SourceFile {
                path: path.to_string(),
                kind,
                layer: Layer::Builtin,
                text: text.to_string(),
            }
        })
        .collect()
}

/// The median of `runs` timings of `work`.
fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

struct Figures {
    count: usize,
    build: Duration,
    first_query: Duration,
    warm_query: Duration,
    warm_activity_query: Duration,
    cold_from_cache: Duration,
    index_bytes: usize,
    top: Vec<String>,
}

fn measure(count: usize) -> Figures {
    let registry = registry(count);
    let candidates: Vec<String> = registry
        .allowed_playbooks(fixture::ACTIVITY)
        .into_iter()
        .map(|playbook| playbook.id.clone())
        .collect();
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    assert_eq!(candidates.len(), count);

    let build = median(51, || {
        std::hint::black_box(Index::build(registry.playbooks()));
    });
    let index = Index::build(registry.playbooks());
    let start = Instant::now();
    let selection = rank::select(&index, &candidates, QUERY, LIMIT);
    let first_query = start.elapsed();
    let warm_query = median(501, || {
        std::hint::black_box(rank::select(&index, &candidates, QUERY, LIMIT));
    });
    // What an activity ranks against: its input, its name and description (and the service's
    // specification, which this registry's activity has none of).
    let operate = registry
        .activity(fixture::ACTIVITY)
        .expect("the operate activity");
    let asked = [QUERY, &operate.name, &operate.description].join("\n");
    let warm_activity_query = median(501, || {
        std::hint::black_box(rank::select(&index, &candidates, &asked, LIMIT));
    });
    let index_bytes = serde_json::to_vec(&index).expect("index as JSON").len();

    let cache = tempfile::tempdir().expect("a scratch cache dir");
    rank::cached(&registry, Some(cache.path()));
    let cold_from_cache = median(51, || {
        let index = rank::cached(&registry, Some(cache.path()));
        std::hint::black_box(rank::select(&index, &candidates, QUERY, LIMIT));
    });
    Figures {
        count,
        build,
        first_query,
        warm_query,
        warm_activity_query,
        cold_from_cache,
        index_bytes,
        top: selection.ids().iter().map(|id| id.to_string()).collect(),
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

fn us(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1_000_000.0)
}

/// The better of two measurements of the same registry, figure by figure: on a shared
/// machine, the lowest of several medians is the one least disturbed by other work.
fn better(a: Figures, b: Figures) -> Figures {
    Figures {
        count: a.count,
        build: a.build.min(b.build),
        first_query: a.first_query.min(b.first_query),
        warm_query: a.warm_query.min(b.warm_query),
        warm_activity_query: a.warm_activity_query.min(b.warm_activity_query),
        cold_from_cache: a.cold_from_cache.min(b.cold_from_cache),
        index_bytes: a.index_bytes,
        top: a.top,
    }
}

/// How many times each size is measured, alternately, before the better figures are kept.
const ROUNDS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; there are no options.
    let mut small = measure(30);
    let mut large = measure(fixture::COUNT);
    for _ in 1..ROUNDS {
        small = better(small, measure(30));
        large = better(large, measure(fixture::COUNT));
    }
    println!(
        "| playbooks | index build | first query | top 5 warm | top 5 warm, as the activity asks | top 5 from the cache file | index JSON | per 100 playbooks |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for figures in [&small, &large] {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} B | {} B |",
            figures.count,
            ms(figures.build),
            us(figures.first_query),
            us(figures.warm_query),
            us(figures.warm_activity_query),
            ms(figures.cold_from_cache),
            figures.index_bytes,
            figures.index_bytes * 100 / figures.count,
        );
    }
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!();
    println!(
        "30 → 300: build {:.1}×, top 5 warm {:.1}× ({:.1}× as the activity asks), from the cache file {:.1}×",
        ratio(small.build, large.build),
        ratio(small.warm_query, large.warm_query),
        ratio(small.warm_activity_query, large.warm_activity_query),
        ratio(small.cold_from_cache, large.cold_from_cache),
    );
    println!("top 5 of 300 for {QUERY:?}: {}", large.top.join(", "));
}
