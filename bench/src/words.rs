//! `shopchat-bench words`: how long the sensitive-word check (PROTOCOL.md §14) takes on
//! one message, with the list the protocol allows at most. It times the library's own
//! matcher, the one ChatServer runs on every send, so no server is needed.

use std::time::Instant;

use hdrhistogram::Histogram;
use shopchat::domain::moderation::{Verdict, WordFilter};
use shopchat::protocol::webhook::{ModerationAction, ModerationList};

/// A word of mixed scripts, different for every `i`.
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 8] = ["假", "货", "ka", "ro", "Mi", "禁", "ZE", "售"];
    let mut w = String::new();
    let mut n = i + 1;
    while n > 0 {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
    }
    w.push('x');
    w
}

/// `chars` characters of ordinary text, none of them a listed word.
fn message(chars: usize) -> String {
    "这款乌龙茶口感很好, shipping tomorrow. "
        .chars()
        .cycle()
        .take(chars)
        .collect()
}

fn time(
    filter: &WordFilter,
    text: &str,
    rounds: usize,
) -> anyhow::Result<(Histogram<u64>, Verdict)> {
    let mut h = Histogram::<u64>::new(3)?;
    let mut verdict = Verdict::Clean;
    for _ in 0..rounds {
        let start = Instant::now();
        verdict = filter.check(text);
        h.record(start.elapsed().as_nanos() as u64)?;
    }
    Ok((h, verdict))
}

fn print(label: &str, h: &Histogram<u64>) {
    println!(
        "{label:<28} p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

pub fn run(words: usize, chars: usize, rounds: usize) -> anyhow::Result<()> {
    let list: Vec<String> = (0..words).map(word).collect();
    let start = Instant::now();
    let mask = WordFilter::new(ModerationList {
        words: list.clone(),
        action: ModerationAction::Mask,
    });
    let built = start.elapsed();
    println!(
        "words {words}, message {chars} characters, {rounds} rounds; list compiled in {:.1} ms",
        built.as_secs_f64() * 1000.0
    );
    let clean = message(chars);
    let (h, verdict) = time(&mask, &clean, rounds)?;
    anyhow::ensure!(verdict == Verdict::Clean, "the clean message matched");
    print("clean message", &h);
    // The same length with a listed word every 100 characters.
    let mut dirty = String::new();
    let hit = &list[words / 2];
    for chunk in clean.chars().collect::<Vec<_>>().chunks(100) {
        let keep = 100usize.saturating_sub(hit.chars().count());
        dirty.extend(chunk.iter().take(keep));
        dirty.push_str(hit);
    }
    let dirty: String = dirty.chars().take(chars).collect();
    let (h, verdict) = time(&mask, &dirty, rounds)?;
    anyhow::ensure!(
        matches!(verdict, Verdict::Masked(_)),
        "the words were not found"
    );
    print("a word every 100 chars, mask", &h);
    Ok(())
}
