//! `meshwork bench search`: the search index (tantivy, sealed on disk) against PostgreSQL
//! tsvector + GIN and SQLite FTS5, on the same generated data and the same query strings.
//!
//! Data and queries are deterministic from `--seed`: item `i` is generated from its own RNG, so
//! each engine regenerates the items it loads instead of holding them all in memory.

use anyhow::Context;
use meshwork_search::query::parse;
use meshwork_search::{
    group_principal, user_principal, Access, IndexDoc, IndexOp, ListQuery, SearchIndex,
    SearchOptions, WriterBudget, CRM, EVERYONE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// CRM records (contacts, companies, deals, notes).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Connector documents (wiki, drive) with group ACLs.
    #[arg(long, default_value_t = 1_000_000)]
    documents: usize,
    /// Groups the searching user belongs to (out of five times as many in total).
    #[arg(long, default_value_t = 1000)]
    groups: usize,
    /// Queries in the mix.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The PostgreSQL baseline's database (a scratch database: the bench creates and drops a
    /// table in it). Skipped with a note when it cannot connect.
    #[arg(
        long,
        env = "MESHWORK_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Measure meshwork only.
    #[arg(long)]
    skip_baselines: bool,
}

const BATCH: usize = 100_000;
const WARMUP: usize = 200;
const CLIENTS: usize = 16;
/// Each baseline phase stops after this long (a baseline can be slow at scale); the table shows
/// how many queries ran.
const BASELINE_CAP: Duration = Duration::from_secs(60);
const WARMUP_CAP: Duration = Duration::from_secs(20);

const FIRST: &str = "james mary john patricia robert jennifer michael linda william elizabeth \
    david barbara richard susan joseph jessica thomas sarah charles karen christopher nancy \
    daniel lisa matthew betty anthony margaret mark sandra donald ashley steven kimberly paul \
    emily andrew donna joshua michelle kenneth dorothy kevin carol brian amanda george melissa \
    timothy deborah ronald stephanie edward rebecca jason sharon jeffrey laura ryan cynthia \
    jacob kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry \
    pamela justin emma scott nicole brandon helen benjamin samantha samuel katherine gregory \
    christine alexander debra frank rachel patrick carolyn raymond janet jack catherine dennis \
    maria jerry heather tyler diane aaron ruth jose julie adam olivia henry joyce nathan \
    virginia grace ada alan linus";
const LAST: &str = "smith johnson williams brown jones garcia miller davis rodriguez martinez \
    hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez \
    thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright \
    scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell \
    carter roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart \
    morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly \
    howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray mendoza \
    ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez hopper \
    lovelace turing torvalds";
const COMPANY: &str = "acme globex initech umbrella stark wayne hooli vandelay soylent cyberdyne \
    tyrell wonka oscorp aperture gringotts nakatomi monarch dunder virtucon zorg krusty \
    paperstreet bluth sterling cooper prestige massive pied piper northwind contoso fabrikam \
    tailspin litware adventure wingtip proseware lucerne margie alpine coho fourth humongous \
    trey woodgrove relecloud bellows zenith quantum apex summit vertex horizon pinnacle beacon \
    harbor granite cedar maple aspen willow falcon condor orbit nova stellar lunar solar polar \
    atlas titan helix vector matrix nimbus";
const COMPANY_SUFFIX: &str = "inc labs systems logistics partners holdings foods energy capital \
    media robotics analytics software consulting industries";
const BASE: &str = "account action budget buyer call campaign channel client close contract \
    cost credit customer deal deliver demand design detail develop discount draft email \
    engage estimate event expand export feature follow forecast fund growth handle hire \
    import improve invoice launch lead license market meet member merge message migrate \
    model negotiate offer onboard order outreach partner pay pilot plan platform pitch \
    policy price process produce product profit project promote proposal purchase quarter \
    quote rate record refund region release renew report request research resolve \
    retain revenue review risk sale schedule score segment sell service settle ship sign \
    source sponsor staff stage start strategy supply support survey target task team \
    tender term test ticket track trade train transfer trial update upgrade vendor \
    visit volume warrant win work yield analyst archive audit backlog benchmark bill board \
    brand bundle capture cluster coach commit compile comply config connect consult \
    convert coordinate cover craft debug decide define deploy document domain draw drive \
    edit enable enroll escalate evaluate execute explore extend filter finance focus \
    format frame gather guide host index inspect install integrate interview invest \
    label layer learn list load lock log manage map measure mentor monitor move network \
    note notify operate optimize organize outline own pack patch perform picture place \
    point poll post power prepare present print prioritize protect provision publish \
    query queue rank reach read rebuild recruit reduce refactor register relay remind \
    render repair replace reply reserve reset restore route run save scale scan search \
    secure select send share shift sort spend split stream structure submit summarize \
    sync tag template thread tool trace transform travel tune unlock upload validate \
    verify view watch window write account invent harvest orchard pattern pilgrim \
    quarry river sketch timber velvet wander anchor blossom canvas glacier lantern \
    marble meadow pebble quiver saddle tunnel voyage whisper";
const SUFFIXES: [&str; 7] = ["", "s", "ed", "ing", "er", "ment", "ly"];
const STAGES: [(&str, &str, &str); 5] = [
    ("s-qual", "Qualification", "open"),
    ("s-prop", "Proposal", "open"),
    ("s-nego", "Negotiation", "open"),
    ("s-won", "Closed Won", "won"),
    ("s-lost", "Closed Lost", "lost"),
];

struct Words {
    first: Vec<&'static str>,
    last: Vec<&'static str>,
    company: Vec<&'static str>,
    suffix: Vec<&'static str>,
    vocab: Vec<String>,
}

fn cap(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Words {
    fn new() -> Self {
        let mut vocab: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in BASE.split_whitespace() {
            for s in SUFFIXES {
                let w = format!("{b}{s}");
                if seen.insert(w.clone()) {
                    vocab.push(w);
                }
            }
        }
        Self {
            first: FIRST.split_whitespace().collect(),
            last: LAST.split_whitespace().collect(),
            company: COMPANY.split_whitespace().collect(),
            suffix: COMPANY_SUFFIX.split_whitespace().collect(),
            vocab,
        }
    }

    fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> &'a T {
        &v[rng.gen_range(0..v.len())]
    }

    fn sentence(&self, rng: &mut StdRng, words: usize) -> String {
        let mut s = String::new();
        for k in 0..words {
            if k > 0 {
                s.push(' ');
            }
            let w = Self::pick(rng, &self.vocab);
            if k == 0 {
                s.push_str(&cap(w));
            } else {
                s.push_str(w);
            }
        }
        s.push('.');
        s
    }

    fn company(&self, rng: &mut StdRng) -> (String, String) {
        let a = *Self::pick(rng, &self.company);
        let b = *Self::pick(rng, &self.suffix);
        (format!("{} {}", cap(a), cap(b)), format!("{a}{b}.example"))
    }
}

/// A contact's names and phone digits (area, exchange, line), for items and queries alike.
struct Person {
    first: &'static str,
    last: &'static str,
    domain: String,
    company: String,
    phone: (u32, u32, u32),
}

fn item_rng(seed: u64, i: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn person(w: &Words, rng: &mut StdRng) -> Person {
    let first = *Words::pick(rng, &w.first);
    let last = *Words::pick(rng, &w.last);
    let (company, domain) = w.company(rng);
    let phone = (
        rng.gen_range(201..990),
        rng.gen_range(200..1000),
        rng.gen_range(0..10_000),
    );
    Person {
        first,
        last,
        domain,
        company,
        phone,
    }
}

fn group_bytes(g: usize) -> [u8; 32] {
    let mut b = [0x47u8; 32];
    b[..8].copy_from_slice(&(g as u64).to_le_bytes());
    b
}

fn user_bytes(u: usize) -> [u8; 32] {
    let mut b = [0x55u8; 32];
    b[..8].copy_from_slice(&(u as u64).to_le_bytes());
    b
}

/// Record `i` (0-based; kinds cycle contact ×4, company ×2, deal ×2, note ×2 per ten).
fn record(w: &Words, seed: u64, i: usize) -> IndexDoc {
    let mut rng = item_rng(seed, i);
    let mut d = IndexDoc {
        id: format!("r{i}"),
        acl: vec![CRM.to_string()],
        updated: i as i64,
        ..Default::default()
    };
    match i % 10 {
        0..=3 => {
            let p = person(w, &mut rng);
            d.kind = "contact".into();
            d.title = format!("{} {}", cap(p.first), cap(p.last));
            let role = w.sentence(&mut rng, 3);
            d.body = format!(
                "{} at {}. {role}",
                cap(Words::pick(&mut rng, &w.vocab).as_str()),
                p.company
            );
            d.emails = vec![format!("{}.{}@{}", p.first, p.last, p.domain)];
            let (a, b, c) = p.phone;
            d.phones = vec![match rng.gen_range(0..3) {
                0 => format!("+1 ({a}) {b:03}-{c:04}"),
                1 => format!("{a}-{b:03}-{c:04}"),
                _ => format!("+1 {a} {b:03} {c:04}"),
            }];
        }
        4 | 5 => {
            let (name, domain) = w.company(&mut rng);
            d.kind = "company".into();
            d.title = name;
            let n = rng.gen_range(6..16);
            d.body = format!("{domain} {}", w.sentence(&mut rng, n));
        }
        6 | 7 => {
            let (name, _) = w.company(&mut rng);
            d.kind = "deal".into();
            d.title = format!("{name} {}", Words::pick(&mut rng, &w.vocab));
            let n = rng.gen_range(4..12);
            d.body = w.sentence(&mut rng, n);
            let (id, stage, state) = STAGES[rng.gen_range(0..STAGES.len())];
            d.stage = vec![id.into(), stage.into(), state.into()];
            let amount = format!(
                "{}.{:02}",
                rng.gen_range(1_000u32..500_000),
                rng.gen_range(0..100)
            );
            d.fields = meshwork_crm::Filter::index_terms(
                serde_json::json!({"name": d.title, "stage": id, "amount": amount, "currency": "EUR"})
                    .as_object()
                    .expect("an object"),
            );
            d.amount = Some(amount);
            d.currency = Some("EUR".into());
            d.stage_id = Some(id.into());
        }
        _ => {
            d.kind = "note".into();
            let n = rng.gen_range(8..20);
            let m = rng.gen_range(0..14);
            d.body = w.sentence(&mut rng, n);
            if m > 0 {
                d.body.push(' ');
                d.body.push_str(&w.sentence(&mut rng, m));
            }
        }
    }
    d
}

/// Document `i`: a wiki page or drive file readable by 1–3 groups, sometimes everyone or a user.
fn document(w: &Words, seed: u64, groups_total: usize, i: usize) -> IndexDoc {
    let mut rng = item_rng(seed ^ 0xD0C5_D0C5, i);
    let tn = rng.gen_range(2..6);
    let title = w.sentence(&mut rng, tn);
    let mut body = String::new();
    let mut left = rng.gen_range(30..61);
    while left > 0 {
        let n = left.min(rng.gen_range(6..15));
        if !body.is_empty() {
            body.push(' ');
        }
        body.push_str(&w.sentence(&mut rng, n));
        left -= n;
    }
    let mut acl = Vec::new();
    for _ in 0..rng.gen_range(1..4) {
        acl.push(group_principal(&group_bytes(
            rng.gen_range(0..groups_total.max(1)),
        )));
    }
    let r: f64 = rng.gen();
    if r < 0.05 {
        acl.push(EVERYONE.to_string());
    } else if r < 0.15 {
        acl.push(user_principal(&user_bytes(rng.gen_range(0..200))));
    }
    IndexDoc {
        id: format!("d{i}"),
        kind: "document".into(),
        title: title.trim_end_matches('.').to_string(),
        body,
        acl,
        source: Some(if rng.gen_bool(0.5) { "wiki" } else { "drive" }.into()),
        updated: i as i64,
        ..Default::default()
    }
}

/// The searcher: user 0, a member of every fifth group (so `groups` groups out of `5 × groups`).
fn searcher_principals(groups: usize) -> Vec<String> {
    let mut p = vec![
        CRM.to_string(),
        EVERYONE.to_string(),
        user_principal(&user_bytes(0)),
    ];
    p.extend((0..groups).map(|k| group_principal(&group_bytes(k * 5))));
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QKind {
    Prefix,
    Typo,
    Email,
    Phone,
    Filter,
}

fn contact_index(rng: &mut StdRng, records: usize) -> usize {
    let tens = records.div_ceil(10).max(1);
    loop {
        let i = rng.gen_range(0..tens) * 10 + rng.gen_range(0..4);
        if i < records {
            return i;
        }
    }
}

fn typo(rng: &mut StdRng, word: &str) -> String {
    let mut c: Vec<char> = word.chars().collect();
    let n = c.len();
    if rng.gen_bool(0.5) {
        for _ in 0..10 {
            let j = rng.gen_range(1..n - 1);
            if c[j] != c[j + 1] {
                c.swap(j, j + 1);
                return c.into_iter().collect();
            }
        }
    }
    let j = rng.gen_range(1..n);
    loop {
        let l = char::from(b'a' + rng.gen_range(0..26u8));
        if l != c[j] {
            c[j] = l;
            return c.into_iter().collect();
        }
    }
}

fn queries(w: &Words, args: &SearchArgs) -> Vec<(QKind, String)> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5EA2_C4E5);
    let mid: Vec<&String> = w
        .vocab
        .iter()
        .filter(|v| (5..=9).contains(&v.len()))
        .collect();
    let mut out = Vec::with_capacity(args.queries);
    for _ in 0..args.queries {
        let r = rng.gen_range(0..100);
        let q = if r < 30 && args.records > 0 {
            let i = contact_index(&mut rng, args.records);
            let p = person(w, &mut item_rng(args.seed, i));
            let keep = p.last.len().div_ceil(2).max(2).min(p.last.len());
            (QKind::Prefix, format!("{} {}", p.first, &p.last[..keep]))
        } else if r < 50 || args.records == 0 {
            let word = Words::pick(&mut rng, &mid);
            (QKind::Typo, format!("{} ", typo(&mut rng, word)))
        } else if r < 65 {
            let i = contact_index(&mut rng, args.records);
            (QKind::Email, record(w, args.seed, i).emails[0].clone())
        } else if r < 80 {
            let i = contact_index(&mut rng, args.records);
            let (a, b, c) = person(w, &mut item_rng(args.seed, i)).phone;
            let s = match rng.gen_range(0..4) {
                0 => format!("({a}) {b:03}-{c:04}"),
                1 => format!("{a}.{b:03}.{c:04}"),
                2 => format!("+1{a}{b:03}{c:04}"),
                _ => format!("{a} {b:03} {c:04}"),
            };
            (QKind::Phone, s)
        } else if rng.gen_bool(0.5) || args.documents == 0 {
            let c = Words::pick(&mut rng, &w.company);
            (QKind::Filter, format!("type:deal stage:won {c}"))
        } else {
            let v = Words::pick(&mut rng, &w.vocab);
            (QKind::Filter, format!("type:document {v}"))
        };
        out.push(q);
    }
    out
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

struct Row {
    name: String,
    p50: Duration,
    p99: Duration,
    qps: f64,
    zero: usize,
    n: usize,
    build: String,
    size: String,
}

fn row(
    name: impl Into<String>,
    mut lat: Vec<Duration>,
    wall: Duration,
    zero: usize,
    build: String,
    size: String,
) -> Row {
    lat.sort_unstable();
    let n = lat.len();
    let at = |p: usize| lat.get((n * p / 100).min(n.saturating_sub(1))).copied();
    Row {
        name: name.into(),
        p50: at(50).unwrap_or_default(),
        p99: at(99).unwrap_or_default(),
        qps: n as f64 / wall.as_secs_f64().max(1e-9),
        zero,
        n,
        build,
        size,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn run_meshwork(
    index: &SearchIndex,
    qs: &[(QKind, String)],
    access: &Access,
    clients: usize,
) -> anyhow::Result<(Vec<Duration>, Duration, usize)> {
    let parsed = qs
        .iter()
        .map(|(_, q)| parse(q).with_context(|| format!("parsing {q:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = SearchOptions::default();
    let started = Instant::now();
    let per: Vec<anyhow::Result<(Vec<Duration>, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                let parsed = &parsed;
                let opts = &opts;
                s.spawn(move || -> anyhow::Result<(Vec<Duration>, usize)> {
                    let mut lat = Vec::new();
                    let mut zero = 0;
                    for q in parsed.iter().skip(t).step_by(clients) {
                        let t0 = Instant::now();
                        let r = index.search(q, access, opts)?;
                        lat.push(t0.elapsed());
                        if r.total == 0 {
                            zero += 1;
                        }
                    }
                    Ok((lat, zero))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread panicked"))
            .collect()
    });
    let wall = started.elapsed();
    let mut lat = Vec::new();
    let mut zero = 0;
    for p in per {
        let (l, z) = p?;
        lat.extend(l);
        zero += z;
    }
    Ok((lat, wall, zero))
}

/// Times CRM list views over the records: deals by amount with stage totals, a stage's deals by
/// last change, contacts by name (the first page and the tenth), and deals narrowed by text.
fn run_lists(index: &SearchIndex) -> anyhow::Result<Vec<String>> {
    const RUNS: usize = 200;
    let access = Access::new([CRM.to_string()]);
    let won = meshwork_crm::Filter::parse(meshwork_crm::Kind::Deal, [("stage", "s-won")])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let list = |kind: &str, sort: &str| -> anyhow::Result<ListQuery> {
        Ok(ListQuery {
            kind: kind.into(),
            clauses: Vec::new(),
            text: None,
            ids: None,
            sort: sort.parse()?,
            after: None,
            limit: 50,
            me: None,
        })
    };
    let mut cases: Vec<(&str, ListQuery)> = vec![
        (
            "deals by -amount, with stage totals",
            list("deal", "-amount")?,
        ),
        ("deals in one stage by -updated", {
            let mut q = list("deal", "-updated")?;
            q.clauses = won
                .clauses()
                .into_iter()
                .map(|c| meshwork_search::FieldClause {
                    term: c.term,
                    or_absent: c.or_absent,
                })
                .collect();
            q
        }),
        ("contacts by name", list("contact", "name")?),
        ("deals matching `acme`, by name", {
            let mut q = list("deal", "name")?;
            q.text = Some(parse("acme")?);
            q
        }),
    ];
    // The tenth page of contacts by name: the cursor of the ninth.
    let mut deep = list("contact", "name")?;
    for _ in 0..9 {
        deep.after = index.list(&deep, &access)?.next;
    }
    cases.push(("contacts by name, tenth page", deep));
    let mut out = Vec::new();
    for (name, q) in &cases {
        let mut lat = Vec::with_capacity(RUNS);
        let mut total = 0;
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let page = index.list(q, &access)?;
            lat.push(t0.elapsed());
            total = page.total;
        }
        let r = row(
            *name,
            lat,
            Duration::from_secs(1),
            0,
            String::new(),
            String::new(),
        );
        out.push(format!(
            "| {name} | {total} | {RUNS} | {} | {} |",
            ms(r.p50),
            ms(r.p99)
        ));
    }
    Ok(out)
}

/// A query string as the baselines see it: full-text terms (each a prefix), a kind filter, and a
/// required exact term for `stage:`. Emails are kept whole for PostgreSQL (its parser makes an
/// email one lexeme) and split for SQLite.
#[derive(Debug, Default)]
struct Translated {
    kind: Option<String>,
    terms: Vec<String>,
    email: Option<String>,
    exact: Vec<String>,
}

fn translate(q: &str) -> Translated {
    let mut t = Translated::default();
    for tok in q.split_whitespace() {
        let lower = tok.to_lowercase();
        if let Some(v) = lower.strip_prefix("type:") {
            t.kind = Some(v.to_string());
        } else if let Some(v) = lower.strip_prefix("stage:") {
            t.exact.push(v.to_string());
        } else if lower.contains('@') {
            t.email = Some(lower);
        } else {
            t.terms.extend(
                lower
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
    }
    t
}

fn pg_tsquery(t: &Translated) -> String {
    let mut parts: Vec<String> = t.terms.iter().map(|w| format!("{w}:*")).collect();
    parts.extend(t.exact.iter().cloned());
    if let Some(e) = &t.email {
        parts.push(e.clone());
    }
    parts.join(" & ")
}

fn fts_match(t: &Translated, acl: Option<&str>) -> String {
    let mut parts: Vec<String> = t.terms.iter().map(|w| format!("\"{w}\"*")).collect();
    parts.extend(t.exact.iter().map(|w| format!("\"{w}\"")));
    if let Some(e) = &t.email {
        let words: Vec<&str> = e
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
            .collect();
        parts.push(format!("\"{}\"", words.join(" ")));
    }
    let text = format!("{{title body}}: ({})", parts.join(" AND "));
    match acl {
        Some(a) => format!("{text} AND acl: ({a})"),
        None => text,
    }
}

/// The text the baselines index: title, then emails, phones, body and a deal's stage words.
fn flat(d: &IndexDoc) -> (String, String) {
    let mut body = String::new();
    for e in d.emails.iter().chain(&d.phones) {
        body.push_str(e);
        body.push(' ');
    }
    body.push_str(&d.body);
    for s in &d.stage {
        body.push(' ');
        body.push_str(s);
    }
    (d.title.clone(), body)
}

fn copy_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

async fn postgres(
    args: &SearchArgs,
    w: &Words,
    qs: &[(QKind, String)],
    principals: &[String],
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::PgConnection::connect(&args.postgres_url),
    )
    .await;
    let mut conn = match connect {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            notes.push(format!("PostgreSQL skipped: cannot connect: {e}"));
            return Ok(());
        }
        Err(_) => {
            notes.push("PostgreSQL skipped: connecting timed out".into());
            return Ok(());
        }
    };
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    notes.push(format!("PostgreSQL {version} on the same machine"));
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_search_items")
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE bench_search_items (id text, kind text, title text, body text, acl text[], \
         tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(title,'') || ' ' || \
         coalesce(body,''))) STORED)",
    )
    .execute(&mut conn)
    .await?;
    eprintln!("postgres: loading");
    let started = Instant::now();
    let groups_total = args.groups * 5;
    let total = args.records + args.documents;
    let mut i = 0;
    while i < total {
        let end = (i + BATCH).min(total);
        let mut buf = String::new();
        for k in i..end {
            let d = if k < args.records {
                record(w, args.seed, k)
            } else {
                document(w, args.seed, groups_total, k - args.records)
            };
            let (title, body) = flat(&d);
            copy_escape(&d.id, &mut buf);
            buf.push('\t');
            copy_escape(&d.kind, &mut buf);
            buf.push('\t');
            copy_escape(&title, &mut buf);
            buf.push('\t');
            copy_escape(&body, &mut buf);
            buf.push_str("\t{");
            buf.push_str(&d.acl.join(","));
            buf.push_str("}\n");
        }
        let mut copy = conn
            .copy_in_raw("COPY bench_search_items (id, kind, title, body, acl) FROM STDIN")
            .await?;
        copy.send(buf.into_bytes()).await?;
        copy.finish().await?;
        i = end;
    }
    let loaded = started.elapsed();
    eprintln!("postgres: indexing");
    sqlx::raw_sql(
        "SET maintenance_work_mem = '512MB'; \
         CREATE INDEX bench_search_items_tsv ON bench_search_items USING GIN (tsv); \
         CREATE INDEX bench_search_items_acl ON bench_search_items USING GIN (acl); \
         ANALYZE bench_search_items",
    )
    .execute(&mut conn)
    .await?;
    let built = started.elapsed();
    let size: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('bench_search_items')")
        .fetch_one(&mut conn)
        .await?;
    notes.push(format!(
        "PostgreSQL: COPY {:.1} s, then GIN indexes + ANALYZE {:.1} s",
        loaded.as_secs_f64(),
        (built - loaded).as_secs_f64()
    ));
    let translated: Vec<(String, Option<String>)> = qs
        .iter()
        .map(|(_, q)| {
            let t = translate(q);
            (pg_tsquery(&t), t.kind)
        })
        .collect();
    const SQL: &str = "SELECT id FROM bench_search_items WHERE tsv @@ to_tsquery('simple', $1) \
        AND acl && $2 AND ($3::text IS NULL OR kind = $3) \
        ORDER BY ts_rank(tsv, to_tsquery('simple', $1)) DESC LIMIT 10";
    let principals = principals.to_vec();
    let warm = Instant::now();
    for (tsq, kind) in translated.iter().cycle().take(WARMUP) {
        if warm.elapsed() > WARMUP_CAP {
            break;
        }
        sqlx::query_scalar::<_, String>(SQL)
            .bind(tsq)
            .bind(&principals)
            .bind(kind)
            .fetch_all(&mut conn)
            .await?;
    }
    eprintln!("postgres: 1 client");
    let mut lat = Vec::new();
    let mut zero = 0;
    let started = Instant::now();
    for (tsq, kind) in &translated {
        if started.elapsed() > BASELINE_CAP {
            break;
        }
        let t0 = Instant::now();
        let ids = sqlx::query_scalar::<_, String>(SQL)
            .bind(tsq)
            .bind(&principals)
            .bind(kind)
            .fetch_all(&mut conn)
            .await?;
        lat.push(t0.elapsed());
        if ids.is_empty() {
            zero += 1;
        }
    }
    let wall = started.elapsed();
    rows.push(row(
        "PostgreSQL tsvector+GIN, 1 client",
        lat,
        wall,
        zero,
        format!("{:.1} s", built.as_secs_f64()),
        mib(size as u64),
    ));

    eprintln!("postgres: {CLIENTS} clients");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CLIENTS as u32)
        .min_connections(CLIENTS as u32)
        .connect(&args.postgres_url)
        .await?;
    let translated = Arc::new(translated);
    let principals = Arc::new(principals);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let pool = pool.clone();
        let translated = translated.clone();
        let principals = principals.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut zero = 0usize;
            for (tsq, kind) in translated.iter().skip(t).step_by(CLIENTS) {
                if started.elapsed() > BASELINE_CAP {
                    break;
                }
                let t0 = Instant::now();
                let ids = sqlx::query_scalar::<_, String>(SQL)
                    .bind(tsq)
                    .bind(principals.as_slice())
                    .bind(kind)
                    .fetch_all(&pool)
                    .await?;
                lat.push(t0.elapsed());
                if ids.is_empty() {
                    zero += 1;
                }
            }
            Ok::<_, sqlx::Error>((lat, zero))
        }));
    }
    let mut lat = Vec::new();
    let mut zero = 0;
    for t in tasks {
        let (l, z) = t.await??;
        lat.extend(l);
        zero += z;
    }
    let wall = started.elapsed();
    pool.close().await;
    rows.push(row(
        format!("PostgreSQL tsvector+GIN, {CLIENTS} clients"),
        lat,
        wall,
        zero,
        String::new(),
        String::new(),
    ));
    sqlx::raw_sql("DROP TABLE bench_search_items")
        .execute(&mut conn)
        .await?;
    Ok(())
}

const FTS_SQL: &str = "SELECT id FROM items WHERE items MATCH ?1 AND (?2 IS NULL OR kind = ?2) \
    ORDER BY rank LIMIT 10";
const FTS_SQL_FILTER: &str = "SELECT id, acl FROM items WHERE items MATCH ?1 \
    AND (?2 IS NULL OR kind = ?2) ORDER BY rank LIMIT 100";

/// One FTS5 query; the number of visible hits (at most 10).
async fn fts_one(
    conn: &mut sqlx::SqliteConnection,
    m: &str,
    kind: &Option<String>,
    acl_in_match: bool,
    allowed: &std::collections::HashSet<String>,
) -> anyhow::Result<usize> {
    if acl_in_match {
        Ok(sqlx::query_scalar::<_, String>(FTS_SQL)
            .bind(m)
            .bind(kind)
            .fetch_all(conn)
            .await?
            .len())
    } else {
        let rows: Vec<(String, String)> = sqlx::query_as(FTS_SQL_FILTER)
            .bind(m)
            .bind(kind)
            .fetch_all(conn)
            .await?;
        Ok(rows
            .iter()
            .filter(|(_, acl)| acl.split(' ').any(|p| allowed.contains(p)))
            .take(10)
            .count())
    }
}

fn fts_token(p: &str) -> String {
    p.replace(':', "_")
}

async fn sqlite(
    args: &SearchArgs,
    w: &Words,
    qs: &[(QKind, String)],
    principals: &[String],
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("fts.db");
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Off)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    sqlx::raw_sql(
        "CREATE VIRTUAL TABLE items USING fts5(id UNINDEXED, kind UNINDEXED, title, body, acl, \
         tokenize = \"unicode61 tokenchars '_'\")",
    )
    .execute(&mut conn)
    .await?;
    eprintln!("sqlite: loading");
    let started = Instant::now();
    let groups_total = args.groups * 5;
    let total = args.records + args.documents;
    let mut i = 0;
    while i < total {
        let end = (i + BATCH).min(total);
        let mut tx = conn.begin().await?;
        for k in i..end {
            let d = if k < args.records {
                record(w, args.seed, k)
            } else {
                document(w, args.seed, groups_total, k - args.records)
            };
            let (title, body) = flat(&d);
            let acl: Vec<String> = d.acl.iter().map(|p| fts_token(p)).collect();
            sqlx::query("INSERT INTO items (id, kind, title, body, acl) VALUES (?, ?, ?, ?, ?)")
                .bind(&d.id)
                .bind(&d.kind)
                .bind(title)
                .bind(body)
                .bind(acl.join(" "))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        i = end;
    }
    sqlx::raw_sql("INSERT INTO items(items) VALUES('optimize')")
        .execute(&mut conn)
        .await?;
    let built = started.elapsed();
    let size = dir_size(dir.path());
    let acl_or = principals
        .iter()
        .map(|p| format!("\"{}\"", fts_token(p)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let translated: Vec<(String, Option<String>)> = qs
        .iter()
        .map(|(_, q)| {
            let t = translate(q);
            (fts_match(&t, Some(acl_or.as_str())), t.kind)
        })
        .collect();
    // Try the ACL as OR terms in the MATCH; fall back to filtering in Rust if it fails or is slow.
    let probe = Instant::now();
    let mut or_ok = true;
    for (m, kind) in translated.iter().take(20) {
        if let Err(e) = sqlx::query_scalar::<_, String>(FTS_SQL)
            .bind(m)
            .bind(kind)
            .fetch_all(&mut conn)
            .await
        {
            notes.push(format!("SQLite: ACL as {} OR terms failed ({e}); the ACL is filtered in Rust over the top 100 matches instead", principals.len()));
            or_ok = false;
            break;
        }
    }
    if or_ok && probe.elapsed() > Duration::from_secs(20) {
        notes.push(format!(
            "SQLite: ACL as {} OR terms took {:.1} s for 20 queries; filtered in Rust over the top 100 matches instead",
            principals.len(),
            probe.elapsed().as_secs_f64()
        ));
        or_ok = false;
    }
    let allowed: std::collections::HashSet<String> =
        principals.iter().map(|p| fts_token(p)).collect();
    let translated: Vec<(String, Option<String>)> = if or_ok {
        notes.push(format!(
            "SQLite FTS5: ACL applied in the MATCH as {} OR terms on the acl column",
            principals.len()
        ));
        translated
    } else {
        qs.iter()
            .map(|(_, q)| {
                let t = translate(q);
                (fts_match(&t, None), t.kind)
            })
            .collect()
    };
    let warm = Instant::now();
    for (m, kind) in translated.iter().cycle().take(WARMUP) {
        if warm.elapsed() > WARMUP_CAP {
            break;
        }
        fts_one(&mut conn, m, kind, or_ok, &allowed).await?;
    }
    eprintln!("sqlite: 1 client");
    let mut lat = Vec::new();
    let mut zero = 0;
    let started = Instant::now();
    for (m, kind) in &translated {
        if started.elapsed() > BASELINE_CAP {
            break;
        }
        let t0 = Instant::now();
        let n = fts_one(&mut conn, m, kind, or_ok, &allowed).await?;
        lat.push(t0.elapsed());
        if n == 0 {
            zero += 1;
        }
    }
    let wall = started.elapsed();
    rows.push(row(
        "SQLite FTS5, 1 client",
        lat,
        wall,
        zero,
        format!("{:.1} s", built.as_secs_f64()),
        mib(size),
    ));
    conn.close().await?;
    Ok(())
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.records >= 10, "--records must be at least 10");
    let w = Words::new();
    let qs = queries(&w, &args);
    let principals = searcher_principals(args.groups);
    let access = Access::new(principals.clone());
    let groups_total = args.groups * 5;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // meshwork: a sealed on-disk index.
    let dir = tempfile::tempdir()?;
    let key = Arc::new(meshwork_keyring::DataKey::from_root(
        meshwork_keyring::SecretKey::from_bytes([9; 32]),
    ));
    let budget = WriterBudget {
        threads: 2,
        memory_bytes: 512 << 20,
    };
    let index = SearchIndex::open_with(dir.path(), key.clone(), "bench", budget)?;
    let total = args.records + args.documents;
    let started = Instant::now();
    let mut applying = Duration::ZERO;
    let mut i = 0;
    let mut seq = 0;
    while i < total {
        let end = (i + BATCH).min(total);
        let ops: Vec<IndexOp> = (i..end)
            .map(|k| {
                IndexOp::Upsert(Box::new(if k < args.records {
                    record(&w, args.seed, k)
                } else {
                    document(&w, args.seed, groups_total, k - args.records)
                }))
            })
            .collect();
        seq += 1;
        let t0 = Instant::now();
        index.apply(&ops, seq)?;
        applying += t0.elapsed();
        i = end;
        eprintln!("meshwork: {end}/{total} indexed");
    }
    let t0 = Instant::now();
    index.wait_merging()?;
    let merging = t0.elapsed();
    let build = started.elapsed();
    let size = dir_size(dir.path());
    let t0 = Instant::now();
    let index = SearchIndex::open_with(dir.path(), key, "bench", budget)?;
    let reopen = t0.elapsed();
    let rss_after_build = proc_status_kib("VmRSS:");
    notes.push(format!(
        "meshwork: {} items; build {:.1} s wall (generation included; {:.1} s in apply, {:.1} s waiting for merges); reopen (decrypt into memory) {:.1} s, {} decrypted in memory",
        index.len(),
        build.as_secs_f64(),
        applying.as_secs_f64(),
        merging.as_secs_f64(),
        reopen.as_secs_f64(),
        mib(index.memory_bytes() as u64),
    ));
    let warm: Vec<(QKind, String)> = qs.iter().cycle().take(WARMUP).cloned().collect();
    run_meshwork(&index, &warm, &access, 1)?;
    eprintln!("meshwork: 1 client");
    let (lat, wall, zero) = run_meshwork(&index, &qs, &access, 1)?;
    rows.push(row(
        "meshwork (tantivy), 1 client",
        lat,
        wall,
        zero,
        format!("{:.1} s", build.as_secs_f64()),
        mib(size),
    ));
    eprintln!("meshwork: {CLIENTS} clients");
    let (lat, wall, zero) = run_meshwork(&index, &qs, &access, CLIENTS)?;
    rows.push(row(
        format!("meshwork (tantivy), {CLIENTS} clients"),
        lat,
        wall,
        zero,
        String::new(),
        String::new(),
    ));
    // Per kind of query at 1 client, to show where time goes.
    let mut per_kind = Vec::new();
    for k in [
        QKind::Prefix,
        QKind::Typo,
        QKind::Email,
        QKind::Phone,
        QKind::Filter,
    ] {
        let sub: Vec<(QKind, String)> = qs.iter().filter(|q| q.0 == k).cloned().collect();
        if sub.is_empty() {
            continue;
        }
        let (lat, wall, zero) = run_meshwork(&index, &sub, &access, 1)?;
        let r = row(
            format!("{k:?}"),
            lat,
            wall,
            zero,
            String::new(),
            String::new(),
        );
        per_kind.push(format!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            r.n,
            ms(r.p50),
            ms(r.p99),
            r.zero
        ));
    }
    let lists = run_lists(&index)?;
    drop(index);
    drop(dir);

    if args.skip_baselines {
        notes.push("baselines skipped (--skip-baselines)".into());
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            if let Err(e) = postgres(&args, &w, &qs, &principals, &mut rows, &mut notes).await {
                notes.push(format!("PostgreSQL baseline failed: {e:#}"));
            }
            if let Err(e) = sqlite(&args, &w, &qs, &principals, &mut rows, &mut notes).await {
                notes.push(format!("SQLite baseline failed: {e:#}"));
            }
        });
    }

    let peak = proc_status_kib("VmHWM:");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cmd: Vec<String> = std::env::args().collect();
    println!();
    println!(
        "## meshwork bench search: {} records + {} documents, {} queries, searcher in {} of {} groups, seed {}",
        args.records, args.documents, qs.len(), args.groups, groups_total, args.seed
    );
    println!();
    println!("| engine | p50 | p99 | QPS | 0-hit queries | build/load | size |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {}/{} | {} | {} |",
            r.name,
            ms(r.p50),
            ms(r.p99),
            r.qps,
            r.zero,
            r.n,
            r.build,
            r.size
        );
    }
    println!();
    let mw = rows
        .iter()
        .find(|r| r.name.starts_with("meshwork") && r.name.ends_with("1 client"));
    let pg = rows
        .iter()
        .find(|r| r.name.starts_with("PostgreSQL") && r.name.ends_with("1 client"));
    if let (Some(mw), Some(pg)) = (mw, pg) {
        println!(
            "PostgreSQL p99 / meshwork p99 at 1 client: {:.1}×",
            pg.p99.as_secs_f64() / mw.p99.as_secs_f64().max(1e-9)
        );
        println!();
    }
    println!("meshwork per query kind, 1 client:");
    println!();
    println!("| kind | queries | p50 | p99 | 0-hit |");
    println!("|---|---:|---:|---:|---:|");
    for l in &per_kind {
        println!("{l}");
    }
    println!();
    println!("meshwork list views (CRM list endpoints served by the index), 1 client, 50 a page:");
    println!();
    println!("| list | matches | runs | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    for l in &lists {
        println!("{l}");
    }
    println!();
    println!(
        "Peak RSS (VmHWM, whole process incl. data generation and baseline clients): {}; RSS after meshwork build+reopen: {}; machine: {cores} cores (nproc); query mix 30% prefix, 20% typo, 15% email, 15% phone, 20% filter+word; {WARMUP} warm-up queries per engine.",
        mib(peak * 1024),
        mib(rss_after_build * 1024)
    );
    for n in &notes {
        println!("- {n}");
    }
    println!(
        "- each baseline phase stops after {} s (warm-up after {} s): its 0-hit column shows how many of the queries ran",
        BASELINE_CAP.as_secs(),
        WARMUP_CAP.as_secs()
    );
    println!("- command: `{}`", cmd.join(" "));
    Ok(())
}
