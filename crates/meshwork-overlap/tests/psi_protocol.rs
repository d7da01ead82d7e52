//! End-to-end PSI runs driven in-process, against a plain `HashSet` oracle, and the failure
//! cases: invalid points, malformed or conflicting chunks, wrong runs, caps.

use std::collections::HashSet;

use meshwork_overlap::psi::{
    CountOutcome, CountsOnly, Full, Initiator, Outgoing, Padding, PsiConfig, PsiError, PsiMode,
    Responder, SharedOutcome,
};
use meshwork_overlap::wire::{self, Message, MessageKind, Mode, RunId, WireError};
use meshwork_overlap::Identifier;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn config(step: usize, chunk_points: usize) -> PsiConfig {
    PsiConfig {
        max_set_size: 1000,
        max_peer_points: 1024,
        padding: Padding::MultipleOf { step },
        chunk_points,
    }
}

/// All chunks of the given messages, some duplicated, in a random order.
fn scrambled(messages: &[&Outgoing], rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut chunks: Vec<Vec<u8>> = messages.iter().flat_map(|m| m.chunks()).collect();
    let dups: Vec<Vec<u8>> = chunks
        .iter()
        .filter(|_| rng.gen_bool(0.3))
        .cloned()
        .collect();
    chunks.extend(dups);
    chunks.shuffle(rng);
    chunks
}

/// A whole run, every message delivered chunk by chunk, scrambled and with repeats.
fn run<M: PsiMode>(
    cfg_i: &PsiConfig,
    cfg_r: &PsiConfig,
    xs: &[Identifier],
    ys: &[Identifier],
    seed: u64,
) -> (M::Outcome, M::Outcome) {
    let mut rng = StdRng::seed_from_u64(seed);
    let run_id = RunId::random();
    let mut initiator = Initiator::<M>::new(cfg_i, run_id, xs).unwrap();
    let mut responder = Responder::<M>::new(cfg_r, run_id, ys).unwrap();

    for chunk in scrambled(&[initiator.query()], &mut rng) {
        responder.receive(&chunk).unwrap();
    }
    assert!(responder.is_ready());
    let own_points = responder.own_points().clone();
    let mut responder = responder.respond().unwrap();

    assert!(!initiator.is_ready());
    if seed.is_multiple_of(2) {
        for chunk in scrambled(&[&own_points, responder.echo()], &mut rng) {
            initiator.receive(&chunk).unwrap();
        }
    } else {
        // The responder's points first, re-blinded before the echo arrives (as a server does
        // while the responder computes its echo); resent chunks of them are then stale.
        for chunk in scrambled(&[&own_points], &mut rng) {
            initiator.receive(&chunk).unwrap();
        }
        initiator.reblind_peer().unwrap();
        initiator.reblind_peer().unwrap();
        assert!(!initiator.is_ready());
        let mut late = scrambled(&[responder.echo()], &mut rng);
        late.push(own_points.chunk(0).unwrap());
        late.shuffle(&mut rng);
        for chunk in late {
            match initiator.receive(&chunk) {
                Ok(_) => {}
                Err(PsiError::StaleMessage {
                    kind: MessageKind::ResponderBlinded,
                }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
    }
    assert!(initiator.is_ready());
    let (outcome_i, last) = initiator.finish().unwrap();

    for chunk in scrambled(&[&last], &mut rng) {
        responder.receive(&chunk).unwrap();
    }
    assert!(responder.is_ready());
    let outcome_r = responder.finish().unwrap();
    (outcome_i, outcome_r)
}

/// One real-world thing, written in one of several raw forms that all normalise alike.
fn render(key: u32, form: u8) -> Identifier {
    let f = form % 3;
    match key % 4 {
        0 => Identifier::email(&match f {
            0 => format!("first.last{key}@gmail.com"),
            1 => format!("FirstLast{key}+crm@GoogleMail.com"),
            _ => format!("  f.i.r.s.t.l.a.s.t{key}@GMAIL.COM. "),
        }),
        1 => Identifier::email(&match f {
            0 => format!("jane.doe+{key}@example.org"),
            1 => format!("Jane.Doe+{key}@EXAMPLE.org"),
            _ => format!("\tjane.doe+{key}@example.ORG.\n"),
        }),
        2 => Identifier::company_domain(&match f {
            0 => format!("acme{key}.co.uk"),
            1 => format!("https://www.Acme{key}.co.uk/about?x=1"),
            _ => format!("sales@shop.ACME{key}.CO.UK"),
        }),
        _ => Identifier::phone(
            &match f {
                0 => format!("(415) 555-{:04}", 1000 + key),
                1 => format!("+1 415 555 {:04}", 1000 + key),
                _ => format!("415.555.{:04}", 1000 + key),
            },
            "US",
        ),
    }
    .unwrap()
}

/// The oracle: indices of `a` whose key is in `b`, and the number of distinct shared keys.
fn oracle(a: &[(u32, u8)], b: &[(u32, u8)]) -> (Vec<usize>, usize) {
    let bs: HashSet<u32> = b.iter().map(|(k, _)| *k).collect();
    let shared: Vec<usize> = a
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| bs.contains(k))
        .map(|(i, _)| i)
        .collect();
    let distinct: HashSet<u32> = a
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| bs.contains(k))
        .collect();
    (shared, distinct.len())
}

fn items() -> impl Strategy<Value = Vec<(u32, u8)>> {
    prop::collection::vec((0u32..80, any::<u8>()), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn full_mode_matches_oracle(
        a in items(),
        b in items(),
        step_i in 1usize..9,
        step_r in 1usize..9,
        chunk_i in 1usize..6,
        chunk_r in 1usize..6,
        seed in any::<u64>(),
    ) {
        let xs: Vec<Identifier> = a.iter().map(|(k, f)| render(*k, *f)).collect();
        let ys: Vec<Identifier> = b.iter().map(|(k, f)| render(*k, *f)).collect();
        let cfg_i = config(step_i, chunk_i);
        let cfg_r = config(step_r, chunk_r);
        let (out_i, out_r): (SharedOutcome, SharedOutcome) =
            run::<Full>(&cfg_i, &cfg_r, &xs, &ys, seed);
        let distinct = |v: &[Identifier]| v.iter().collect::<HashSet<_>>().len();
        prop_assert_eq!(out_i.shared, oracle(&a, &b).0);
        prop_assert_eq!(out_r.shared, oracle(&b, &a).0);
        prop_assert_eq!(out_i.peer_set_size_padded, cfg_r.padding.padded_len(distinct(&ys)));
        prop_assert_eq!(out_r.peer_set_size_padded, cfg_i.padding.padded_len(distinct(&xs)));
    }

    #[test]
    fn counts_only_mode_matches_oracle(
        a in items(),
        b in items(),
        step in 1usize..9,
        chunk in 1usize..6,
        seed in any::<u64>(),
    ) {
        let xs: Vec<Identifier> = a.iter().map(|(k, f)| render(*k, *f)).collect();
        let ys: Vec<Identifier> = b.iter().map(|(k, f)| render(*k, *f)).collect();
        let cfg = config(step, chunk);
        let (out_i, out_r): (CountOutcome, CountOutcome) =
            run::<CountsOnly>(&cfg, &cfg, &xs, &ys, seed);
        let count = oracle(&a, &b).1;
        prop_assert_eq!(out_i.count, count);
        prop_assert_eq!(out_r.count, count);
    }
}

fn domains(range: std::ops::Range<u32>) -> Vec<Identifier> {
    range
        .map(|i| Identifier::Domain(format!("company{i}.com")))
        .collect()
}

#[test]
fn default_config_pads_to_1024_and_finds_the_overlap() {
    let cfg = PsiConfig::default();
    let xs = domains(0..300);
    let ys = domains(200..700);
    let (out_i, out_r) = run::<Full>(&cfg, &cfg, &xs, &ys, 1);
    assert_eq!(out_i.shared, (200..300).collect::<Vec<usize>>());
    assert_eq!(out_r.shared, (0..100).collect::<Vec<usize>>());
    assert_eq!(out_i.peer_set_size_padded, 1024);
    assert_eq!(out_r.peer_set_size_padded, 1024);
}

#[test]
fn empty_sets_still_run() {
    let cfg = config(4, 3);
    let (out_i, out_r) = run::<Full>(&cfg, &cfg, &[], &domains(0..5), 2);
    assert!(out_i.shared.is_empty());
    assert!(out_r.shared.is_empty());
    assert_eq!(out_i.peer_set_size_padded, 8);
    assert_eq!(out_r.peer_set_size_padded, 4);
}

#[test]
fn normalisation_variants_count_as_shared() {
    let xs = vec![
        Identifier::email("Jane.Doe@gmail.com").unwrap(),
        Identifier::company_domain("https://www.acme.co.uk/").unwrap(),
        Identifier::phone("(415) 555-2671", "US").unwrap(),
        Identifier::email("bob@example.com").unwrap(),
    ];
    let ys = vec![
        Identifier::phone("+1 415 555 2671", "GB").unwrap(),
        Identifier::email("janedoe+partners@googlemail.com").unwrap(),
        Identifier::company_domain("ceo@ACME.CO.UK").unwrap(),
        Identifier::email("bob+x@example.com").unwrap(),
    ];
    let cfg = config(1, 2);
    let (out_i, out_r) = run::<Full>(&cfg, &cfg, &xs, &ys, 3);
    assert_eq!(out_i.shared, vec![0, 1, 2]);
    assert_eq!(out_r.shared, vec![0, 1, 2]);
    // The same identifier under different kinds never matches.
    let xs = vec![Identifier::Email("x".into())];
    let ys = vec![Identifier::Domain("x".into())];
    let (out_i, _) = run::<Full>(&cfg, &cfg, &xs, &ys, 4);
    assert!(out_i.shared.is_empty());
}

#[test]
fn duplicate_inputs_are_all_reported_and_counted_once() {
    let xs = vec![
        Identifier::Domain("a.com".into()),
        Identifier::Domain("b.com".into()),
        Identifier::Domain("a.com".into()),
    ];
    let ys = vec![
        Identifier::Domain("a.com".into()),
        Identifier::Domain("a.com".into()),
    ];
    let cfg = config(1, 1);
    let (out_i, out_r) = run::<Full>(&cfg, &cfg, &xs, &ys, 5);
    assert_eq!(out_i.shared, vec![0, 2]);
    assert_eq!(out_r.shared, vec![0, 1]);
    // Duplicates are merged before padding: two distinct on one side, one on the other.
    assert_eq!(out_i.peer_set_size_padded, 1);
    assert_eq!(out_r.peer_set_size_padded, 2);
    let (c_i, c_r) = run::<CountsOnly>(&cfg, &cfg, &xs, &ys, 6);
    assert_eq!((c_i.count, c_r.count), (1, 1));
}

/// A responder that has received all of message 1.
fn ready_responder(
    cfg: &PsiConfig,
    xs: &[Identifier],
    ys: &[Identifier],
) -> (Initiator<Full>, Responder<Full>) {
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(cfg, run_id, xs).unwrap();
    let mut responder = Responder::<Full>::new(cfg, run_id, ys).unwrap();
    for chunk in initiator.query().chunks() {
        responder.receive(&chunk).unwrap();
    }
    (initiator, responder)
}

/// Chunk `index` of `out` with its points replaced.
fn tampered(out: &Outgoing, index: u32, f: impl FnOnce(&mut Vec<[u8; 32]>)) -> Vec<u8> {
    let msg = out.message(index).unwrap();
    let mut points = msg.points().to_vec();
    f(&mut points);
    Message::new(
        msg.kind(),
        msg.mode(),
        msg.run_id(),
        msg.chunk_index(),
        msg.total_chunks(),
        points,
    )
    .unwrap()
    .encode()
}

#[test]
fn invalid_point_in_query_is_named_and_aborts() {
    let cfg = config(1, 4);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..10)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &domains(5..15)).unwrap();
    let q = initiator.query();
    for i in [0, 2] {
        responder.receive(&q.chunk(i).unwrap()).unwrap();
    }
    // Not a canonical encoding (the field element is >= p).
    let bad = tampered(q, 1, |p| p[2] = [0xff; 32]);
    responder.receive(&bad).unwrap();
    assert!(responder.is_ready());
    let err = responder.respond().unwrap_err();
    assert_eq!(
        err,
        PsiError::InvalidPoint {
            kind: MessageKind::InitiatorBlinded,
            chunk_index: 1,
            index: 2,
            reason: "not a canonical ristretto255 encoding",
        }
    );
    assert_eq!(
        err.to_string(),
        "point 2 of chunk 1 of the initiator-blinded message is invalid: not a canonical ristretto255 encoding"
    );
}

#[test]
fn identity_point_is_rejected() {
    let cfg = config(1, 4);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    responder
        .receive(&initiator.query().chunk(0).unwrap())
        .unwrap();
    responder
        .receive(&tampered(initiator.query(), 1, |p| p[3] = [0; 32]))
        .unwrap();
    assert!(matches!(
        responder.respond(),
        Err(PsiError::InvalidPoint {
            chunk_index: 1,
            index: 3,
            reason: "the identity element",
            ..
        })
    ));
}

#[test]
fn invalid_point_in_responder_set_is_named_at_the_initiator() {
    let cfg = config(1, 3);
    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..6), &domains(0..6));
    let own = responder.own_points().clone();
    let responder = responder.respond().unwrap();
    for chunk in responder.echo().chunks() {
        initiator.receive(&chunk).unwrap();
    }
    initiator.receive(&own.chunk(0).unwrap()).unwrap();
    // Non-canonical: a "negative" field element (low bit set) is not a valid encoding.
    let mut odd = [0u8; 32];
    odd[0] = 1;
    initiator
        .receive(&tampered(&own, 1, |p| p[0] = odd))
        .unwrap();
    assert!(matches!(
        initiator.finish(),
        Err(PsiError::InvalidPoint {
            kind: MessageKind::ResponderBlinded,
            chunk_index: 1,
            index: 0,
            ..
        })
    ));
}

#[test]
fn invalid_point_found_by_early_reblinding_aborts_the_run() {
    let cfg = config(1, 3);
    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..6), &domains(0..6));
    let own = responder.own_points().clone();
    initiator.receive(&own.chunk(0).unwrap()).unwrap();
    // Asked for before message 2 is complete: not ready, and the run is over.
    assert_eq!(
        initiator.reblind_peer(),
        Err(PsiError::NotReady(MessageKind::ResponderBlinded))
    );
    assert_eq!(initiator.reblind_peer(), Err(PsiError::Aborted));

    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..6), &domains(0..6));
    let own = responder.own_points().clone();
    let responder = responder.respond().unwrap();
    initiator.receive(&own.chunk(0).unwrap()).unwrap();
    initiator
        .receive(&tampered(&own, 1, |p| p[2] = [0xff; 32]))
        .unwrap();
    assert!(matches!(
        initiator.reblind_peer(),
        Err(PsiError::InvalidPoint {
            kind: MessageKind::ResponderBlinded,
            chunk_index: 1,
            index: 2,
            ..
        })
    ));
    // Nothing more is accepted or computed in that run.
    assert_eq!(
        initiator.receive(&responder.echo().chunk(0).unwrap()),
        Err(PsiError::Aborted)
    );
    assert!(!initiator.is_ready());
    assert!(matches!(initiator.finish(), Err(PsiError::Aborted)));
}

#[test]
fn malformed_chunk_aborts_the_run() {
    let cfg = config(1, 4);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    let mut chunk = initiator.query().chunk(0).unwrap();
    chunk.pop();
    assert!(matches!(
        responder.receive(&chunk),
        Err(PsiError::Malformed(WireError::LengthMismatch { .. }))
    ));
    // Aborted: even good chunks are refused now, and there is no outcome.
    assert_eq!(
        responder.receive(&initiator.query().chunk(0).unwrap()),
        Err(PsiError::Aborted)
    );
    assert!(!responder.is_ready());
    assert_eq!(responder.respond().unwrap_err(), PsiError::Aborted);
    assert!(matches!(
        Responder::<Full>::new(&cfg, run_id, &[])
            .unwrap()
            .receive(&[1, 2, 3]),
        Err(PsiError::Malformed(WireError::TooShort { len: 3 }))
    ));
}

#[test]
fn replayed_chunks_identical_ok_different_rejected() {
    let cfg = config(1, 4);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &domains(0..8)).unwrap();
    let q = initiator.query();
    let first = responder.receive(&q.chunk(1).unwrap()).unwrap();
    assert!(!first.duplicate && !first.message_complete);
    assert_eq!((first.received_chunks, first.total_chunks), (1, 2));
    let again = responder.receive(&q.chunk(1).unwrap()).unwrap();
    assert!(again.duplicate && !again.message_complete);
    assert_eq!(again.received_chunks, 1);
    let different = tampered(q, 1, |p| p.swap(0, 1));
    assert_eq!(
        responder.receive(&different),
        Err(PsiError::ConflictingChunk {
            kind: MessageKind::InitiatorBlinded,
            chunk_index: 1
        })
    );
    assert_eq!(
        responder.receive(&q.chunk(0).unwrap()),
        Err(PsiError::Aborted)
    );
}

#[test]
fn reordered_chunks_are_reassembled_and_incomplete_messages_are_not_ready() {
    let cfg = config(1, 1);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..6)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &domains(3..9)).unwrap();
    let chunks: Vec<Vec<u8>> = initiator.query().chunks().collect();
    for chunk in chunks.iter().skip(1).rev() {
        let r = responder.receive(chunk).unwrap();
        assert!(!r.message_complete);
        assert!(!responder.is_ready());
    }
    // The last missing chunk (the first one) completes the message.
    let r = responder.receive(&chunks[0]).unwrap();
    assert!(r.message_complete);
    assert!(responder.is_ready());
    let responder = responder.respond().unwrap();
    assert_eq!(responder.echo().total_points(), 6);

    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..6), &domains(3..9));
    let responder = responder.respond().unwrap();
    let echo: Vec<Vec<u8>> = responder.echo().chunks().collect();
    for chunk in &echo[..5] {
        initiator.receive(chunk).unwrap();
    }
    assert!(!initiator.is_ready());
    assert_eq!(
        initiator.finish().unwrap_err(),
        PsiError::NotReady(MessageKind::ResponderEcho)
    );
}

#[test]
fn wrong_run_id_mode_or_message_is_rejected() {
    let cfg = config(1, 4);
    let other_run = Initiator::<Full>::new(&cfg, RunId([1; 16]), &domains(0..4)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, RunId([2; 16]), &domains(0..4)).unwrap();
    let err = responder
        .receive(&other_run.query().chunk(0).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        PsiError::WrongRunId {
            expected: RunId([2; 16]),
            got: RunId([1; 16])
        }
    );
    assert!(err.to_string().contains("0101010101"));

    let counts = Initiator::<CountsOnly>::new(&cfg, RunId([3; 16]), &domains(0..4)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, RunId([3; 16]), &domains(0..4)).unwrap();
    assert_eq!(
        responder.receive(&counts.query().chunk(0).unwrap()),
        Err(PsiError::ModeMismatch {
            expected: Mode::Full,
            got: Mode::CountsOnly
        })
    );

    // A responder's own message sent back to it.
    let mut responder = Responder::<Full>::new(&cfg, RunId([4; 16]), &domains(0..4)).unwrap();
    let own = responder.own_points().chunk(0).unwrap();
    assert!(matches!(
        responder.receive(&own),
        Err(PsiError::UnexpectedMessage {
            kind: MessageKind::ResponderBlinded,
            ..
        })
    ));
}

#[test]
fn late_query_chunk_after_responding_is_stale_not_fatal() {
    let cfg = config(1, 2);
    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..4), &domains(2..6));
    let query_chunk = initiator.query().chunk(0).unwrap();
    let own = responder.own_points().clone();
    let mut responder = responder.respond().unwrap();
    assert_eq!(
        responder.receive(&query_chunk),
        Err(PsiError::StaleMessage {
            kind: MessageKind::InitiatorBlinded
        })
    );
    for chunk in own.chunks().chain(responder.echo().chunks()) {
        initiator.receive(&chunk).unwrap();
    }
    let (out_i, last) = initiator.finish().unwrap();
    for chunk in last.chunks() {
        responder.receive(&chunk).unwrap();
    }
    let out_r = responder.finish().unwrap();
    assert_eq!(out_i.shared, vec![2, 3]);
    assert_eq!(out_r.shared, vec![0, 1]);
}

#[test]
fn sets_over_the_cap_are_rejected_when_building_and_receiving() {
    let mut cfg = config(1, 4);
    cfg.max_set_size = 5;
    assert_eq!(
        Initiator::<Full>::new(&cfg, RunId::random(), &domains(0..6)).unwrap_err(),
        PsiError::SetTooLarge { size: 6, max: 5 }
    );
    assert_eq!(
        Responder::<CountsOnly>::new(&cfg, RunId::random(), &domains(0..6)).unwrap_err(),
        PsiError::SetTooLarge { size: 6, max: 5 }
    );

    // The peer sends 10 points; we accept at most 6.
    let big = config(1, 4);
    let mut small = config(1, 4);
    small.max_peer_points = 6;
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&big, run_id, &domains(0..10)).unwrap();
    let mut responder = Responder::<Full>::new(&small, run_id, &domains(0..3)).unwrap();
    responder
        .receive(&initiator.query().chunk(0).unwrap())
        .unwrap();
    assert_eq!(
        responder.receive(&initiator.query().chunk(1).unwrap()),
        Err(PsiError::PeerSetTooLarge {
            kind: MessageKind::InitiatorBlinded,
            points: 8,
            max: 6
        })
    );
    assert_eq!(responder.respond().unwrap_err(), PsiError::Aborted);

    // A claimed chunk count above the cap is refused on the first chunk, before any storage.
    let mut tiny = config(1, 1);
    tiny.max_peer_points = 3;
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&config(1, 1), run_id, &domains(0..10)).unwrap();
    let mut responder = Responder::<Full>::new(&tiny, run_id, &[]).unwrap();
    assert!(matches!(
        responder.receive(&initiator.query().chunk(7).unwrap()),
        Err(PsiError::PeerSetTooLarge {
            points: 10,
            max: 3,
            ..
        })
    ));
}

#[test]
fn echo_of_the_wrong_length_is_rejected() {
    let cfg = config(1, 4);
    let (mut initiator, responder) = ready_responder(&cfg, &domains(0..8), &domains(0..8));
    let responder = responder.respond().unwrap();
    let echo = responder.echo();
    initiator.receive(&echo.chunk(0).unwrap()).unwrap();
    // Chunk 1 with one point missing: the message completes with 7 of 8 points.
    let short = tampered(echo, 1, |p| {
        p.pop();
    });
    assert_eq!(
        initiator.receive(&short),
        Err(PsiError::EchoLengthMismatch {
            kind: MessageKind::ResponderEcho,
            expected: 8,
            got: 7
        })
    );
}

#[test]
fn inconsistent_chunk_totals_are_rejected() {
    let cfg = config(1, 2);
    let run_id = RunId::random();
    let initiator = Initiator::<Full>::new(&cfg, run_id, &domains(0..6)).unwrap();
    let mut responder = Responder::<Full>::new(&cfg, run_id, &[]).unwrap();
    responder
        .receive(&initiator.query().chunk(0).unwrap())
        .unwrap();
    let m = initiator.query().message(1).unwrap();
    let liar = Message::new(m.kind(), m.mode(), m.run_id(), 1, 4, m.points().to_vec()).unwrap();
    assert_eq!(
        responder.receive(&liar.encode()),
        Err(PsiError::InconsistentTotalChunks {
            kind: MessageKind::InitiatorBlinded,
            expected: 3,
            got: 4
        })
    );
}

#[test]
fn counts_only_outcome_is_only_a_count() {
    let cfg = config(1, 16);
    let xs = domains(0..64);
    let ys = domains(32..100);
    let (out_i, out_r): (CountOutcome, CountOutcome) = run::<CountsOnly>(&cfg, &cfg, &xs, &ys, 9);
    // `CountOutcome` has no field that could hold indices: the type is the guarantee.
    assert_eq!(
        out_i,
        CountOutcome {
            count: 32,
            peer_set_size_padded: 68
        }
    );
    assert_eq!(
        out_r,
        CountOutcome {
            count: 32,
            peer_set_size_padded: 64
        }
    );
}

#[test]
fn outgoing_chunks_cover_the_message() {
    let cfg = config(1, 3);
    let i = Initiator::<Full>::new(&cfg, RunId([7; 16]), &domains(0..10)).unwrap();
    let q = i.query();
    assert_eq!(q.kind(), MessageKind::InitiatorBlinded);
    assert_eq!(q.total_points(), 10);
    assert_eq!(q.total_chunks(), 4);
    assert!(q.chunk(4).is_none());
    assert!(q.message(u32::MAX).is_none());
    let sizes: Vec<usize> = q
        .chunks()
        .map(|c| wire::decode(&c).unwrap().points().len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
    for (n, c) in q.chunks().enumerate() {
        let m = wire::decode(&c).unwrap();
        assert_eq!(m, q.message(n as u32).unwrap());
        assert_eq!(m.run_id(), RunId([7; 16]));
    }
}

#[test]
fn bad_config_is_rejected() {
    let mut cfg = config(1, 0);
    assert!(matches!(
        Initiator::<Full>::new(&cfg, RunId::random(), &[]),
        Err(PsiError::InvalidConfig(_))
    ));
    cfg.chunk_points = wire::MAX_POINTS_PER_CHUNK as usize + 1;
    assert!(matches!(
        Responder::<Full>::new(&cfg, RunId::random(), &[]),
        Err(PsiError::InvalidConfig(_))
    ));
}
