//! Deterministic mutation test: thousands of damaged variants of the real-world corpus
//! (byte flips, truncations, broken boundaries, encoded words with control characters,
//! huge header lists) through ingest with outgoing mail on. Nothing may panic, and every
//! input must be accounted for: created + threaded + duplicate + quarantined = inputs.

use std::time::Instant;

use maildesk::inbound::ingest::{prepare, BatchItem, Counts, Origin, Outcome};
use rand::{Rng, SeedableRng};

use crate::support::{corpus_dir, TestEnv};

const MUTANTS_PER_MESSAGE: usize = 6;
const BATCH: usize = 50;

fn corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<_> = walk(&corpus_dir())
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e != "jsonl" && e != "md" && e != "txt")
        })
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|raw| raw.len() < 2_000_000)
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn mutate(raw: &[u8], rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let mut m = raw.to_vec();
    match rng.gen_range(0..7) {
        0 => {
            for _ in 0..rng.gen_range(1..20) {
                if !m.is_empty() {
                    let i = rng.gen_range(0..m.len());
                    m[i] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        1 => m.truncate(rng.gen_range(0..=m.len())),
        2 => {
            // Break MIME boundaries: every "--" line loses or gains characters.
            let text = String::from_utf8_lossy(&m).replace("\n--", "\n-x-");
            m = text.into_bytes();
        }
        3 => {
            let header = [
                "From: =?utf-8?q?Mal=0AX=0D?= <m@x.example>\r\n",
                "Subject: =?utf-8?b?G1syShtbMzFtcmVkBw0KQmNjOiB4QHk=?=\r\n",
                "Cc: =?utf-8?q?C=00c?= <c@x.example>, \"\r\n\" <>\r\n",
                "Content-Disposition: attachment; filename=\"..\u{202E}fdp.exe\"\r\n",
            ][rng.gen_range(0..4)];
            m.splice(0..0, header.bytes());
        }
        4 => {
            let ids: String = (0..rng.gen_range(1000..5000))
                .map(|i| format!("<m{i}@x.example> "))
                .collect();
            let cc: String = (0..rng.gen_range(100..2000))
                .map(|i| format!("c{i}@x.example, "))
                .collect();
            let header = format!("References: {ids}\r\nIn-Reply-To: {ids}\r\nCc: {cc}\r\n");
            m.splice(0..0, header.into_bytes());
        }
        5 => {
            // Swap line endings, as transports do.
            let text = String::from_utf8_lossy(&m);
            m = if text.contains("\r\n") {
                text.replace("\r\n", "\n").into_bytes()
            } else {
                text.replace('\n', "\r\n").into_bytes()
            };
        }
        _ => {
            // Duplicate a random slice into a random place.
            if m.len() > 2 {
                let a = rng.gen_range(0..m.len());
                let b = rng.gen_range(a..m.len().min(a + 4096));
                let at = rng.gen_range(0..m.len());
                let slice = m[a..b].to_vec();
                m.splice(at..at, slice);
            }
        }
    }
    m
}

#[tokio::test]
async fn thousands_of_mutants_are_all_accounted_for_and_nothing_panics() {
    let env =
        TestEnv::with_config("[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n")
            .await;
    let ingestor = env.ingestor().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let originals = corpus();
    assert!(
        originals.len() > 100,
        "corpus too small: {}",
        originals.len()
    );
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for raw in &originals {
        for _ in 0..MUTANTS_PER_MESSAGE {
            inputs.push(mutate(raw, &mut rng));
        }
    }
    let started = Instant::now();
    let mut counts = Counts::default();
    for (n, chunk) in inputs.chunks(BATCH).enumerate() {
        let batch: Vec<BatchItem> = chunk
            .iter()
            .enumerate()
            .map(|(i, raw)| BatchItem {
                prepared: prepare(ingestor.options(), raw),
                origin: Origin::new(format!("mutant-{}", n * BATCH + i), None),
                raw: raw.clone(),
            })
            .collect();
        for outcome in ingestor.ingest_batch(&batch).await {
            if let Ok(Outcome::Quarantined { reason, .. }) = &outcome {
                assert!(
                    !reason.contains("internal error") && !reason.contains("parser failed"),
                    "a panic was caught: {reason}"
                );
            }
            assert!(outcome.is_ok(), "not stored: {outcome:?}");
            counts.record(&outcome);
        }
    }
    let accounted = counts.created + counts.threaded + counts.duplicates + counts.quarantined;
    eprintln!(
        "mutation test: {} mutants of {} corpus messages in {:.1} s: {counts}",
        inputs.len(),
        originals.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(accounted, inputs.len() as u64, "{counts}");
    let store = ingestor.store();
    let mut conn = store.acquire().await.unwrap();
    let messages = maildesk::store::messages::count(&mut conn).await.unwrap();
    let inbound: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE direction = 'in'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(messages >= inbound);
    assert_eq!(
        inbound as u64,
        counts.created + counts.threaded,
        "every created or threaded input is one stored message"
    );
}
