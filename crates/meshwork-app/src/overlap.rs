//! Partner overlap between two workspaces of this server (PartnerMesh, DESIGN.md decision 7).
//!
//! - **Populations** are what a workspace compares: saved filters over its CRM, evaluated on the
//!   search index (three built in: customers, open opportunities, prospects), or match-only lists
//!   loaded from another CRM's export, which keep nothing but keyed hashes (pm02).
//! - **Partnerships** need both sides: one invites, the other accepts; either revokes, at once.
//!   Each side chooses, per population of its own, what the partner learns about it: nothing,
//!   counts only, or per-record indicators; and a threshold under which counts read "fewer than
//!   N" (pm05).
//! - **A run** computes, for each side, which of *its own* records overlap which of the partner's
//!   shared populations. Identifiers are normalised (`meshwork_overlap::normalize`), turned into
//!   pseudonyms under a server-wide identity key and then into match tokens under the
//!   partnership's key; both keys are derived from the master key and never stored. Tokens live
//!   in memory for the run and are dropped; only each side's view (counts and indicators about
//!   its own records) is stored, sealed with that side's key (pm04).
//!
//! A stored view records the change-feed positions and the partnership version it was computed
//! at; reading it after either side's data or the settings changed recomputes it first.

use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use crate::partnerships::{Lifecycle, PartnershipState};
use crate::state::{now_millis, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, RecordId, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_overlap::{Identifier, MatchToken, Tokenizer};
use meshwork_store::{OverlapResultRow, PartnershipRow, PopulationRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// Populations per workspace (built-in ones included): a run keeps one bit per population.
pub const MAX_POPULATIONS: usize = 32;
/// Rows in one match-only list, and records in one population (the benchmark's 2^20).
pub const MAX_POPULATION_SIZE: usize = 1 << 20;
/// The default "fewer than N" threshold.
pub const DEFAULT_THRESHOLD: u32 = 3;
/// Phone numbers without a country code are read as numbers of this region, on both sides.
const PHONE_REGION: &str = "US";

/// What a side tells its partner about one of its populations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShareLevel {
    /// Nothing: the partner does not learn the population exists.
    None,
    /// The partner sees how many of its records overlap the population (or "fewer than N").
    Counts,
    /// The partner also sees which of its own records overlap the population.
    Indicators,
}

/// One side's choices in a partnership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SideSettings {
    /// Population id → what the partner learns about it. Populations not listed share nothing.
    #[serde(default)]
    pub shares: BTreeMap<String, ShareLevel>,
    /// Counts about this side's populations below this read "fewer than N" (1 to 1000).
    pub threshold: u32,
}

impl Default for SideSettings {
    fn default() -> Self {
        Self {
            shares: BTreeMap::new(),
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// What a population is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PopulationSpec {
    /// The CRM records a search filter matches (deals stand for their companies and contacts).
    Filter { query: String },
    /// A match-only list: rows of identifiers kept only as keyed hashes.
    MatchList { rows: u64, entries: u64 },
}

/// A population as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Population {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub spec: PopulationSpec,
    /// Built-in populations cannot be deleted.
    pub builtin: bool,
}

/// The built-in populations (their ids are fixed; they are not stored).
pub fn builtin_populations() -> Vec<Population> {
    let f = |id: &str, name: &str, query: &str| Population {
        id: id.to_string(),
        name: name.to_string(),
        spec: PopulationSpec::Filter {
            query: query.to_string(),
        },
        builtin: true,
    };
    vec![
        f("customers", "Customers", "type:deal stage:won"),
        f(
            "open-opportunities",
            "Open opportunities",
            "type:deal stage:open",
        ),
        f("prospects", "Prospects", "tag:prospect"),
    ]
}

#[derive(Serialize, Deserialize)]
struct StoredPopulation {
    name: String,
    spec: PopulationSpec,
}

fn population_aad<'a>(scope: &'a str, id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        scope,
        record: id,
        field,
    }
}

/// The workspace's populations, built-in ones first.
pub async fn populations(state: &AppState, ws: WorkspaceId) -> AppResult<Vec<Population>> {
    let key = state.workspace_key(ws)?;
    let scope = ws.to_string();
    let mut out = builtin_populations();
    for row in state.store.populations(ws).await? {
        let plain = key.open(
            population_aad(&scope, &row.id, "population"),
            &row.data_sealed,
        )?;
        let p: StoredPopulation = serde_json::from_slice(&plain)
            .map_err(|e| AppError::internal(format!("population {}: {e}", row.id)))?;
        out.push(Population {
            id: row.id,
            name: p.name,
            spec: p.spec,
            builtin: false,
        });
    }
    Ok(out)
}

/// Checks a population name.
pub fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `name`: must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

/// Stores a new population; `members` holds a match-only list's pseudonyms (one row per entry).
pub async fn create_population(
    state: &AppState,
    ws: WorkspaceId,
    name: String,
    spec: PopulationSpec,
    members: Option<&[Vec<MatchToken>]>,
) -> AppResult<Population> {
    let existing = populations(state, ws).await?;
    if existing.len() >= MAX_POPULATIONS {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("a workspace has at most {MAX_POPULATIONS} populations (built-in ones included); delete one first"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let key = state.workspace_key(ws)?;
    let scope = ws.to_string();
    let stored = StoredPopulation {
        name: name.clone(),
        spec: spec.clone(),
    };
    let data = serde_json::to_vec(&stored).map_err(AppError::internal)?;
    let data_sealed = key.seal(population_aad(&scope, &id, "population"), &data);
    let members_sealed = members.map(|rows| {
        key.seal(
            population_aad(&scope, &id, "members"),
            &encode_members(rows),
        )
    });
    let now = now_millis();
    state
        .store
        .population_put(
            &PopulationRow {
                id: id.clone(),
                workspace_id: ws,
                data_sealed,
                created_at: now,
                updated_at: now,
            },
            members_sealed.as_deref(),
            now,
        )
        .await?;
    Ok(Population {
        id,
        name,
        spec,
        builtin: false,
    })
}

/// Rows of pseudonyms as bytes: per row, a count byte then that many 32-byte pseudonyms.
fn encode_members(rows: &[Vec<MatchToken>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| 1 + 32 * r.len()).sum());
    for r in rows {
        out.push(r.len() as u8);
        for p in r {
            out.extend_from_slice(p);
        }
    }
    out
}

fn decode_members(bytes: &[u8]) -> AppResult<Vec<Vec<MatchToken>>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&n, tail)) = rest.split_first() {
        let len = n as usize * 32;
        if tail.len() < len {
            return Err(AppError::internal("a match-only list is truncated"));
        }
        let row = tail[..len]
            .chunks_exact(32)
            .map(|c| <MatchToken>::try_from(c).expect("32-byte chunk"))
            .collect();
        out.push(row);
        rest = &tail[len..];
    }
    Ok(out)
}

/// The server-wide identity tokenizer: pseudonym = HMAC(identity key, kind ‖ 0 ‖ value).
pub fn identity(state: &AppState) -> Tokenizer {
    let key = state.keyring.server_key("overlap/identity");
    Tokenizer::new(key.dangerously_expose())
}

fn partnership_tokenizer(state: &AppState, id: &str) -> Tokenizer {
    let key = state
        .keyring
        .server_key(&format!("overlap/partnership/{id}"));
    Tokenizer::new(key.dangerously_expose())
}

/// The fields of a CRM record's document that hold identifiers, read without the rest of the
/// document: a company's `domains`, a contact's `emails` and `phones`, each a string or an
/// array (elements that are not strings are skipped, as is a field of any other type).
/// Documents are serialised maps, so a field never repeats (a repeated one would be an error).
#[derive(Debug, Default, serde::Deserialize)]
pub struct IdentityFields {
    #[serde(default)]
    domains: Strings,
    #[serde(default)]
    emails: Strings,
    #[serde(default)]
    phones: Strings,
}

/// A document field read as its strings: one, several, or none.
#[derive(Debug, Default)]
struct Strings(Vec<String>);

impl<'de> serde::Deserialize<'de> for Strings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Strings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(StringOrOther(v)) = seq.next_element()? {
                    out.extend(v);
                }
                Ok(Strings(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Strings, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Strings::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Strings, E> {
                Ok(Strings::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Strings, E> {
                Ok(Strings::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Strings, E> {
                Ok(Strings::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Strings, E> {
                Ok(Strings::default())
            }
            fn visit_unit<E>(self) -> Result<Strings, E> {
                Ok(Strings::default())
            }
        }
        d.deserialize_any(Visit)
    }
}

/// An array element: a string, or anything else (skipped).
struct StringOrOther(Option<String>);

impl<'de> serde::Deserialize<'de> for StringOrOther {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(StringOrOther(Some(s))),
            _ => Ok(StringOrOther(None)),
        }
    }
}

/// The identifiers of a CRM record: a company's domains, a contact's emails and phones.
/// Values that do not normalise (a free-mail domain, a malformed address) are skipped.
pub fn record_identifiers(kind: Kind, fields: &IdentityFields) -> Vec<Identifier> {
    let mut out = Vec::new();
    match kind {
        Kind::Company => {
            out.extend(
                fields
                    .domains
                    .0
                    .iter()
                    .filter_map(|d| Identifier::company_domain(d).ok()),
            );
        }
        Kind::Contact => {
            out.extend(
                fields
                    .emails
                    .0
                    .iter()
                    .filter_map(|e| Identifier::email(e).ok()),
            );
            out.extend(
                fields
                    .phones
                    .0
                    .iter()
                    .filter_map(|p| Identifier::phone(p, PHONE_REGION).ok()),
            );
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// One thing a side compares: a record of its CRM, or a row of a match-only list.
struct Element {
    record: Option<(RecordId, Kind)>,
    pseudonyms: Vec<MatchToken>,
    /// Which of the side's populations (by position) hold it.
    populations: u64,
}

/// A side's populations and their elements, with pseudonyms in place of identifiers.
struct SideData {
    populations: Vec<Population>,
    elements: Vec<Element>,
}

/// Evaluates every population of `ws` into elements (one per record or match-list row), as of
/// its feed position `seq`.
async fn side_data(state: &AppState, ws: WorkspaceId, seq: i64) -> AppResult<SideData> {
    let pops = populations(state, ws).await?;
    // Population bits: more populations than the cap (possible only through concurrent creates)
    // are left out of runs rather than overflowing the masks.
    let pops: Vec<Population> = pops.into_iter().take(MAX_POPULATIONS).collect();
    let mut elements = Vec::new();
    for (bit, p) in pops.iter().enumerate() {
        if !matches!(p.spec, PopulationSpec::MatchList { .. }) {
            continue;
        }
        let sealed = state
            .store
            .population_members(ws, &p.id)
            .await?
            .unwrap_or_default();
        if sealed.is_empty() {
            continue;
        }
        let key = state.workspace_key(ws)?;
        let scope = ws.to_string();
        let plain = key.open(population_aad(&scope, &p.id, "members"), &sealed)?;
        for row in decode_members(&plain)? {
            elements.push(Element {
                record: None,
                pseudonyms: row,
                populations: 1u64 << bit,
            });
        }
    }
    elements.extend(record_pseudonyms(state, ws, &pops, seq).await?);
    Ok(SideData {
        populations: pops,
        elements,
    })
}

/// A CRM record of a side, with its normalised identifiers.
pub(crate) struct RecordElement {
    pub id: RecordId,
    pub kind: Kind,
    pub identifiers: Vec<Identifier>,
    /// Which of `pops` (by position) hold it.
    pub populations: u64,
}

/// What a record a population names stands for in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stands {
    /// A company or contact: compared by its own identifiers.
    Itself(Kind),
    /// A deal: it stands for the companies and contacts it links to.
    Deal,
    /// Anything else: not compared.
    Nothing,
}

/// A record read for a run: what it stands for, and what it carries (`T`: its normalised
/// identifiers, or their pseudonyms).
#[derive(Debug, Clone)]
pub(crate) struct Known<T> {
    pub stands: Stands,
    pub value: T,
}

/// Reads the records among `ids` that `known` lacks into it; a company or contact carries
/// `carry(kind, its identity fields)`, anything else `T::default()`.
async fn read_into<T: Default>(
    state: &AppState,
    crm: &Crm<'_>,
    ws: WorkspaceId,
    ids: &[RecordId],
    known: &mut HashMap<RecordId, Known<T>>,
    carry: &impl Fn(Kind, &IdentityFields) -> T,
) -> AppResult<()> {
    let missing: Vec<RecordId> = ids
        .iter()
        .filter(|id| !known.contains_key(id))
        .copied()
        .collect();
    known.reserve(missing.len());
    for chunk in missing.chunks(2000) {
        for row in state.store.crm_records(ws, chunk).await? {
            let known_row = match Kind::from_str(&row.kind) {
                Ok(kind @ (Kind::Company | Kind::Contact)) => Known {
                    stands: Stands::Itself(kind),
                    value: carry(kind, &crm.open_as::<IdentityFields>(&row)?),
                },
                Ok(Kind::Deal) => Known {
                    stands: Stands::Deal,
                    value: T::default(),
                },
                _ => Known {
                    stands: Stands::Nothing,
                    value: T::default(),
                },
            };
            known.insert(row.id, known_row);
        }
    }
    Ok(())
}

/// Evaluates the saved-filter populations among `pops` (at most [`MAX_POPULATIONS`]): for each
/// company or contact they hold, which of them (by position) hold it, sorted by record id.
/// Deals stand for their companies and contacts; companies and contacts stand for themselves
/// only (not for the companies a contact is linked to). Every record named ends up in `known`,
/// read once.
async fn membership<T: Default>(
    state: &AppState,
    ws: WorkspaceId,
    pops: &[Population],
    known: &mut HashMap<RecordId, Known<T>>,
    carry: impl Fn(Kind, &IdentityFields) -> T,
) -> AppResult<Vec<(RecordId, u64)>> {
    let crm = Crm::new(state, ws)?;
    // Sorted by record, each population merged in: a linear merge of sorted lists costs a
    // fraction of a million ordered-map inserts, and holds no more than the records named.
    let mut by_record: Vec<(RecordId, u64)> = Vec::new();
    for (bit, p) in pops.iter().enumerate().take(MAX_POPULATIONS) {
        let PopulationSpec::Filter { query } = &p.spec else {
            continue;
        };
        let ids: Vec<RecordId> = state.search.crm_ids(state, ws, query).await?;
        read_into(state, &crm, ws, &ids, known, &carry).await?;
        let mut records: Vec<RecordId> = Vec::with_capacity(ids.len());
        let mut deals = Vec::new();
        for id in &ids {
            match known.get(id).map(|k| k.stands) {
                Some(Stands::Itself(_)) => records.push(*id),
                Some(Stands::Deal) => deals.push(*id),
                _ => {}
            }
        }
        for link in state.store.crm_links_from(ws, &deals).await? {
            if link.role == "company" || link.role == "contact" {
                records.push(link.to);
            }
        }
        records.sort_unstable();
        records.dedup();
        if records.len() > MAX_POPULATION_SIZE {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("population {:?} holds more than {MAX_POPULATION_SIZE} records; narrow its filter", p.name),
            ));
        }
        by_record = merge_bit(by_record, records, 1u64 << bit);
    }
    // Records only a deal named (its companies and contacts) are read now.
    let named: Vec<RecordId> = by_record.iter().map(|(id, _)| *id).collect();
    read_into(state, &crm, ws, &named, known, &carry).await?;
    // A deal's link to something that is not a company or contact names nothing; a record
    // whose processing is restricted at the person's request is never matched (mm17).
    let restricted: std::collections::HashSet<RecordId> =
        state.store.crm_restricted(ws).await?.into_iter().collect();
    by_record.retain(|(id, _)| {
        !restricted.contains(id)
            && matches!(known.get(id), Some(k) if matches!(k.stands, Stands::Itself(_)))
    });
    Ok(by_record)
}

/// Merges `records` (sorted, distinct) into `by_record` (sorted by record, distinct), setting
/// `bit` in the mask of each record `records` holds.
fn merge_bit(
    by_record: Vec<(RecordId, u64)>,
    records: Vec<RecordId>,
    bit: u64,
) -> Vec<(RecordId, u64)> {
    use std::cmp::Ordering;
    let mut out = Vec::with_capacity(by_record.len().max(records.len()));
    let mut a = by_record.into_iter().peekable();
    let mut b = records.into_iter().peekable();
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (Some((x, mask)), Some(y)) => match x.cmp(&y) {
                Ordering::Less => {
                    out.push((x, mask));
                    a.next();
                }
                Ordering::Greater => {
                    out.push((y, bit));
                    b.next();
                }
                Ordering::Equal => {
                    out.push((x, mask | bit));
                    a.next();
                    b.next();
                }
            },
            (Some(_), None) => {
                out.extend(a);
                break;
            }
            (None, Some(_)) => {
                out.extend(b.map(|y| (y, bit)));
                break;
            }
            (None, None) => break,
        }
    }
    out
}

/// The CRM records in the saved-filter populations among `pops` (at most [`MAX_POPULATIONS`]),
/// with their normalised identifiers; records without a usable identifier are left out. Used by
/// two-server runs, whose protocol needs the identifiers themselves (and so keeps nothing).
pub(crate) async fn record_elements(
    state: &AppState,
    ws: WorkspaceId,
    pops: &[Population],
) -> AppResult<Vec<RecordElement>> {
    let mut known: HashMap<RecordId, Known<Vec<Identifier>>> = HashMap::new();
    let by_record = membership(state, ws, pops, &mut known, record_identifiers).await?;
    let mut out = Vec::with_capacity(by_record.len());
    for (id, populations) in by_record {
        let Some(Known {
            stands: Stands::Itself(kind),
            value: identifiers,
        }) = known.remove(&id)
        else {
            continue;
        };
        if identifiers.is_empty() {
            continue;
        }
        out.push(RecordElement {
            id,
            kind,
            identifiers,
            populations,
        });
    }
    Ok(out)
}

/// The same for a same-server run, with pseudonyms in place of identifiers, through the
/// process's cache ([`crate::pseudonyms`]): only records written since the workspace's last
/// run are read and opened. `seq` is the workspace's feed position, read before anything else.
async fn record_pseudonyms(
    state: &AppState,
    ws: WorkspaceId,
    pops: &[Population],
    seq: i64,
) -> AppResult<Vec<Element>> {
    let identity = identity(state);
    let carry = |kind: Kind, fields: &IdentityFields| -> Box<[MatchToken]> {
        record_identifiers(kind, fields)
            .iter()
            .map(|i| identity.token(i))
            .collect()
    };
    let elements = |by_record: Vec<(RecordId, u64)>,
                    known: &HashMap<RecordId, Known<Box<[MatchToken]>>>| {
        by_record
            .into_iter()
            .filter_map(|(id, populations)| match known.get(&id) {
                Some(Known {
                    stands: Stands::Itself(kind),
                    value,
                }) if !value.is_empty() => Some(Element {
                    record: Some((id, *kind)),
                    pseudonyms: value.to_vec(),
                    populations,
                }),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let budget = state.config.overlap.cache_records;
    if budget == 0 {
        let mut known = HashMap::new();
        let by_record = membership(state, ws, pops, &mut known, carry).await?;
        return Ok(elements(by_record, &known));
    }
    let (mut guard, refresh) = state.pseudonyms.checkout(state, ws, seq).await?;
    let entry = guard.as_mut().expect("a checked-out entry");
    let before = entry.records.len();
    let result = membership(state, ws, pops, &mut entry.records, carry)
        .await
        .map(|by_record| elements(by_record, &entry.records));
    tracing::debug!(
        workspace = %ws,
        cold = refresh.cold,
        replayed = refresh.replayed,
        forgotten = refresh.forgotten,
        read = entry.records.len() - before,
        "overlap records"
    );
    // Records read before an error are as fresh as the others: keep them.
    state.pseudonyms.checkin(ws, guard, budget);
    result
}

/// One cell of the account-mapping matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatrixCell {
    /// Your population.
    pub population: String,
    /// The partner's population.
    pub partner_population: String,
    /// How many of your records (or list rows) in `population` the partner also has in
    /// `partner_population`; absent when under the partner's threshold.
    pub count: Option<u64>,
    /// Set instead of `count` when the count is under the partner's threshold: "fewer than N".
    pub fewer_than: Option<u32>,
}

/// One of your records that the partner also has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverlapRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Your populations holding it.
    pub populations: Vec<String>,
    /// The partner's populations (shared with indicators) that hold it too.
    pub partner_populations: Vec<String>,
}

/// A partner population as shared with you.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedPopulation {
    pub id: String,
    pub name: String,
    pub level: ShareLevel,
}

/// What one side sees after a run: only facts about its own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SideView {
    pub computed_at: i64,
    /// Your populations, with what you share of each.
    pub populations: Vec<SharedPopulation>,
    /// The partner's populations shared with you (counts or indicators).
    pub partner_populations: Vec<SharedPopulation>,
    pub matrix: Vec<MatrixCell>,
    pub records: Vec<OverlapRecord>,
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub basis: Basis,
}

/// What a view was computed from, to tell when it is stale.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Basis {
    pub own_seq: i64,
    pub partner_seq: i64,
    pub version: i64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredView {
    pub view: SideView,
    pub basis: Basis,
}

/// The settings of each side of a partnership: (inviter's, invitee's).
pub fn settings(p: &PartnershipRow) -> AppResult<(SideSettings, SideSettings)> {
    let parse = |s: &str| {
        serde_json::from_str::<SideSettings>(s)
            .map_err(|e| AppError::internal(format!("partnership {} settings: {e}", p.id)))
    };
    Ok((parse(&p.inviter_settings)?, parse(&p.invitee_settings)?))
}

/// One side of a run: its populations and elements, its share settings and its tokens.
struct Side<'a> {
    data: &'a SideData,
    settings: &'a SideSettings,
    tokens: &'a [Vec<MatchToken>],
}

/// Computes what `me` sees given the partner's elements and share settings.
fn view_for(me: &Side<'_>, partner: &Side<'_>, computed_at: i64, basis: Basis) -> SideView {
    let (my_settings, my_tokens) = (me.settings, me.tokens);
    let (partner_settings, partner_tokens) = (partner.settings, partner.tokens);
    let (me, partner) = (me.data, partner.data);
    // The partner's populations shared with me, by bit.
    let shared: Vec<(usize, &Population, ShareLevel)> = partner
        .populations
        .iter()
        .enumerate()
        .filter_map(|(bit, p)| {
            let level = partner_settings
                .shares
                .get(&p.id)
                .copied()
                .unwrap_or(ShareLevel::None);
            (level != ShareLevel::None).then_some((bit, p, level))
        })
        .collect();
    let shared_mask: u64 = shared.iter().map(|(b, _, _)| 1u64 << b).sum();
    let indicator_mask: u64 = shared
        .iter()
        .filter(|(_, _, l)| *l == ShareLevel::Indicators)
        .map(|(b, _, _)| 1u64 << b)
        .sum();
    // Token → the partner's shared populations holding it. Elements outside every shared
    // population never enter the map, so nothing about them can reach my view.
    let mut theirs: HashMap<MatchToken, u64, TokenHash> =
        HashMap::with_capacity_and_hasher(partner_tokens.len(), TokenHash);
    for (e, tokens) in partner.elements.iter().zip(partner_tokens) {
        let m = e.populations & shared_mask;
        if m == 0 {
            continue;
        }
        for t in tokens {
            *theirs.entry(*t).or_default() |= m;
        }
    }
    let n_mine = me.populations.len();
    let mut counts = vec![[0u64; 64]; n_mine];
    let mut records = Vec::new();
    for (e, tokens) in me.elements.iter().zip(my_tokens) {
        let m = tokens
            .iter()
            .filter_map(|t| theirs.get(t))
            .fold(0u64, |a, b| a | b);
        if m == 0 {
            continue;
        }
        for (x, row) in counts.iter_mut().enumerate() {
            if e.populations & (1 << x) != 0 {
                for (y, c) in row.iter_mut().enumerate() {
                    if m & (1 << y) != 0 {
                        *c += 1;
                    }
                }
            }
        }
        if let (Some((id, kind)), true) = (e.record, m & indicator_mask != 0) {
            records.push(OverlapRecord {
                id: id.to_string(),
                kind: kind.as_str().to_string(),
                populations: bits(e.populations, &me.populations),
                partner_populations: bits(m & indicator_mask, &partner.populations),
            });
        }
    }
    let threshold = partner_settings.threshold;
    let mut matrix = Vec::new();
    for (x, p) in me.populations.iter().enumerate() {
        for (y, q, _) in &shared {
            let c = counts[x][*y];
            let (count, fewer_than) = if c < u64::from(threshold) {
                (None, Some(threshold))
            } else {
                (Some(c), None)
            };
            matrix.push(MatrixCell {
                population: p.id.clone(),
                partner_population: q.id.clone(),
                count,
                fewer_than,
            });
        }
    }
    SideView {
        computed_at,
        populations: me
            .populations
            .iter()
            .map(|p| SharedPopulation {
                id: p.id.clone(),
                name: p.name.clone(),
                level: my_settings
                    .shares
                    .get(&p.id)
                    .copied()
                    .unwrap_or(ShareLevel::None),
            })
            .collect(),
        partner_populations: shared
            .iter()
            .map(|(_, p, l)| SharedPopulation {
                id: p.id.clone(),
                name: p.name.clone(),
                level: *l,
            })
            .collect(),
        matrix,
        records,
        basis,
    }
}

/// Hashes a match token by its first eight bytes. Tokens are HMAC outputs under a key no
/// workspace holds, so they are uniformly distributed and cannot be chosen to collide: the
/// general-purpose (SipHash) hashing of `HashMap` buys nothing here and costs a third of a run.
#[derive(Clone, Copy, Default)]
struct TokenHash;

impl std::hash::BuildHasher for TokenHash {
    type Hasher = TokenHasher;
    fn build_hasher(&self) -> TokenHasher {
        TokenHasher(0)
    }
}

#[derive(Default)]
struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes: keep the leading bytes of the data.
        if let Some(head) = bytes.get(..8) {
            self.0 ^= u64::from_le_bytes(head.try_into().expect("eight bytes"));
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

pub(crate) fn bits(mask: u64, pops: &[Population]) -> Vec<String> {
    pops.iter()
        .enumerate()
        .filter(|(b, _)| mask & (1 << b) != 0)
        .map(|(_, p)| p.id.clone())
        .collect()
}

pub(crate) fn view_aad<'a>(scope: &'a str, partnership: &'a str) -> Aad<'a> {
    Aad {
        scope,
        record: partnership,
        field: "overlap",
    }
}

/// Summary of a run, for the audit log and the API.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    pub computed_at: i64,
    /// Your records and list rows that were compared (never the partner's: how much data it has
    /// is not yours to learn).
    pub compared: u64,
    /// Whether the results were kept (false when the partnership changed during the run).
    pub stored: bool,
}

/// Runs the overlap of an active partnership and stores each side's view; the summary is the
/// requesting side's.
pub async fn run(
    state: &AppState,
    p: &PartnershipRow,
    requester: WorkspaceId,
) -> AppResult<RunSummary> {
    if p.lifecycle() != PartnershipState::Active {
        return Err(not_active());
    }
    state.usage.count(requester, "overlap.run");
    let (inviter_settings, invitee_settings) = settings(p)?;
    let seq_a = workspace_seq(state, p.inviter).await?;
    let seq_b = workspace_seq(state, p.invitee).await?;
    // Both sides load at once (opening and decoding a large list is CPU work).
    let side = |ws, seq| {
        let state = state.clone();
        tokio::spawn(async move { side_data(&state, ws, seq).await })
    };
    let (a, b) = tokio::join!(side(p.inviter, seq_a), side(p.invitee, seq_b));
    let join = |e: tokio::task::JoinError| AppError::internal(format!("overlap task: {e}"));
    let (a, b) = (a.map_err(join)??, b.map_err(join)??);
    let tokenizer = partnership_tokenizer(state, &p.id);
    let (a, b, view_a, view_b) = tokio::task::spawn_blocking(move || {
        let tokens = |s: &SideData| -> Vec<Vec<MatchToken>> {
            use rayon::prelude::*;
            s.elements
                .par_iter()
                .map(|e| e.pseudonyms.iter().map(|x| tokenizer.token_of(x)).collect())
                .collect()
        };
        let ta = tokens(&a);
        let tb = tokens(&b);
        let now = now_millis();
        let side_a = Side {
            data: &a,
            settings: &inviter_settings,
            tokens: &ta,
        };
        let side_b = Side {
            data: &b,
            settings: &invitee_settings,
            tokens: &tb,
        };
        let basis = |own_seq, partner_seq| Basis {
            own_seq,
            partner_seq,
            version: 0,
        };
        let (view_a, view_b) = rayon::join(
            || view_for(&side_a, &side_b, now, basis(seq_a, seq_b)),
            || view_for(&side_b, &side_a, now, basis(seq_b, seq_a)),
        );
        (a.elements.len(), b.elements.len(), view_a, view_b)
    })
    .await
    .map_err(|e| AppError::internal(format!("overlap task: {e}")))?;
    let mut stored = true;
    for (ws, mut view) in [(p.inviter, view_a), (p.invitee, view_b)] {
        view.basis.version = p.version;
        stored &= store_view(state, p, ws, view).await?;
    }
    Ok(RunSummary {
        computed_at: now_millis(),
        compared: if requester == p.inviter { a } else { b } as u64,
        stored,
    })
}

async fn store_view(
    state: &AppState,
    p: &PartnershipRow,
    ws: WorkspaceId,
    view: SideView,
) -> AppResult<bool> {
    let key = state.workspace_key(ws)?;
    let scope = ws.to_string();
    let stored = StoredView {
        basis: view.basis.clone(),
        view,
    };
    let bytes = serde_json::to_vec(&stored).map_err(AppError::internal)?;
    let row = OverlapResultRow {
        partnership_id: p.id.clone(),
        workspace_id: ws,
        data_sealed: key.seal(view_aad(&scope, &p.id), &bytes),
        computed_at: stored.view.computed_at,
    };
    Ok(state.store.overlap_result_put(&row, p.version).await?)
}

async fn workspace_seq(state: &AppState, ws: WorkspaceId) -> AppResult<i64> {
    Ok(state
        .store
        .workspace(ws)
        .await?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::PartnershipNotActive,
                "the partner workspace no longer exists",
            )
        })?
        .last_seq)
}

pub fn not_active() -> AppError {
    AppError::new(
        ErrorCode::PartnershipNotActive,
        "the partnership is not active: it awaits the partner's acceptance or was revoked; nothing is shared",
    )
}

/// What `ws` sees of an active partnership, recomputed first when either side's data or the
/// settings changed since the stored view. Answers the view (`None` when a run could not store
/// it because the partnership changed meanwhile) and the run, if one happened.
pub async fn view(
    state: &AppState,
    p: &PartnershipRow,
    ws: WorkspaceId,
) -> AppResult<(Option<SideView>, Option<RunSummary>)> {
    if p.lifecycle() != PartnershipState::Active {
        return Err(not_active());
    }
    let partner = if p.inviter == ws {
        p.invitee
    } else {
        p.inviter
    };
    let current = Basis {
        own_seq: workspace_seq(state, ws).await?,
        partner_seq: workspace_seq(state, partner).await?,
        version: p.version,
    };
    if let Some(v) = load_view(state, p, ws).await? {
        if v.basis == current {
            return Ok((Some(v), None));
        }
    }
    let summary = run(state, p, ws).await?;
    let v = if summary.stored {
        load_view(state, p, ws).await?
    } else {
        None
    };
    Ok((v, Some(summary)))
}

async fn load_view(
    state: &AppState,
    p: &PartnershipRow,
    ws: WorkspaceId,
) -> AppResult<Option<SideView>> {
    let Some(row) = state.store.overlap_result(&p.id, ws).await? else {
        return Ok(None);
    };
    let key = state.workspace_key(ws)?;
    let scope = ws.to_string();
    let plain = key.open(view_aad(&scope, &p.id), &row.data_sealed)?;
    let stored: StoredView = serde_json::from_slice(&plain)
        .map_err(|e| AppError::internal(format!("overlap view of {}: {e}", p.id)))?;
    let mut view = stored.view;
    view.basis = stored.basis;
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    //! `view_for` against a brute-force oracle: random populations, elements, identifiers,
    //! share levels and thresholds on both sides.
    use super::*;
    use meshwork_crm::Doc;
    use proptest::prelude::*;

    /// One side as plain data: per element, (is a record, populations bit set, token ids).
    type PlainSide = Vec<(bool, u8, Vec<u8>)>;

    fn side(n_pops: usize, plain: &PlainSide) -> (SideData, Vec<Vec<MatchToken>>) {
        let populations = (0..n_pops)
            .map(|i| Population {
                id: format!("p{i}"),
                name: format!("P{i}"),
                spec: PopulationSpec::Filter {
                    query: "type:company".into(),
                },
                builtin: false,
            })
            .collect();
        let mut elements = Vec::new();
        let mut tokens = Vec::new();
        for (is_record, mask, ids) in plain {
            let record = is_record.then(|| (RecordId::new(), Kind::Contact));
            let ts: Vec<MatchToken> = ids.iter().map(|i| [*i; 32]).collect();
            elements.push(Element {
                record,
                pseudonyms: ts.clone(),
                populations: u64::from(*mask) & ((1 << n_pops) - 1),
            });
            tokens.push(ts);
        }
        (
            SideData {
                populations,
                elements,
            },
            tokens,
        )
    }

    fn settings(levels: &[u8], threshold: u32) -> SideSettings {
        SideSettings {
            shares: levels
                .iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    let level = match l % 3 {
                        0 => return None,
                        1 => ShareLevel::Counts,
                        _ => ShareLevel::Indicators,
                    };
                    Some((format!("p{i}"), level))
                })
                .collect(),
            threshold,
        }
    }

    fn plain_side() -> impl Strategy<Value = PlainSide> {
        prop::collection::vec(
            (
                any::<bool>(),
                any::<u8>(),
                prop::collection::vec(0u8..24, 0..3),
            ),
            0..12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn promise_pm04_a_view_holds_exactly_what_the_oracle_allows(
            my_pops in 1usize..5, their_pops in 1usize..5,
            mine in plain_side(), theirs in plain_side(),
            my_levels in prop::collection::vec(any::<u8>(), 4),
            their_levels in prop::collection::vec(any::<u8>(), 4),
            threshold in 1u32..4,
        ) {
            let (me, my_tokens) = side(my_pops, &mine);
            let (partner, their_tokens) = side(their_pops, &theirs);
            let my_settings = settings(&my_levels[..my_pops], 3);
            let their_settings = settings(&their_levels[..their_pops], threshold);
            let v = view_for(
                &Side { data: &me, settings: &my_settings, tokens: &my_tokens },
                &Side { data: &partner, settings: &their_settings, tokens: &their_tokens },
                0,
                Basis::default(),
            );
            let level = |y: usize| their_settings.shares.get(&format!("p{y}")).copied().unwrap_or(ShareLevel::None);
            // The oracle: partner populations holding an element that shares a token with `e`.
            let holds = |e: &Element, y: usize| partner.elements.iter().any(|f| {
                f.populations & (1 << y) != 0 && f.pseudonyms.iter().any(|t| e.pseudonyms.contains(t))
            });
            // Only populations shared with me are named, with their level.
            let shared: Vec<usize> = (0..their_pops).filter(|y| level(*y) != ShareLevel::None).collect();
            let named: Vec<String> = v.partner_populations.iter().map(|p| p.id.clone()).collect();
            prop_assert_eq!(named, shared.iter().map(|y| format!("p{y}")).collect::<Vec<_>>());
            // Every cell: the exact count, or "fewer than" under the partner's threshold.
            prop_assert_eq!(v.matrix.len(), my_pops * shared.len());
            for cell in &v.matrix {
                let x: usize = cell.population[1..].parse().unwrap();
                let y: usize = cell.partner_population[1..].parse().unwrap();
                let count = me.elements.iter().filter(|e| e.populations & (1 << x) != 0 && holds(e, y)).count() as u64;
                if count < u64::from(threshold) {
                    prop_assert_eq!((cell.count, cell.fewer_than), (None, Some(threshold)));
                } else {
                    prop_assert_eq!((cell.count, cell.fewer_than), (Some(count), None));
                }
            }
            // Records: exactly my records in a partner population shared with indicators.
            let mut expected: Vec<(String, Vec<String>)> = me.elements.iter().filter_map(|e| {
                let (id, _) = e.record?;
                let ys: Vec<String> = (0..their_pops)
                    .filter(|y| level(*y) == ShareLevel::Indicators && holds(e, *y))
                    .map(|y| format!("p{y}"))
                    .collect();
                (!ys.is_empty()).then(|| (id.to_string(), ys))
            }).collect();
            let mut got: Vec<(String, Vec<String>)> = v.records.iter().map(|r| (r.id.clone(), r.partner_populations.clone())).collect();
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
            // Nothing of the partner's is in the view but the names of what it shares.
            let text = serde_json::to_string(&v).unwrap();
            for f in &partner.elements {
                if let Some((id, _)) = f.record {
                    prop_assert!(!text.contains(&id.to_string()));
                }
            }
        }
    }

    /// The fields as the whole document holds them: the oracle of [`IdentityFields`]'s parse.
    fn fields_of(doc: &Doc) -> [Vec<String>; 3] {
        let strings = |field: &str| match doc.get(field) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        [strings("domains"), strings("emails"), strings("phones")]
    }

    /// Any JSON value up to a small depth, strings from a set that includes escapes.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z@.\\\"\u{e9}\u{1F600} +0-9]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn merging_populations_equals_an_ordered_map(
            pops in prop::collection::vec(prop::collection::btree_set(0u8..64, 0..40), 0..6)
        ) {
            let id = |n: u8| RecordId(uuid::Uuid::from_u128(n as u128));
            let mut merged = Vec::new();
            let mut oracle: BTreeMap<RecordId, u64> = BTreeMap::new();
            for (bit, pop) in pops.iter().enumerate() {
                merged = merge_bit(merged, pop.iter().map(|n| id(*n)).collect(), 1 << bit);
                for n in pop {
                    *oracle.entry(id(*n)).or_default() |= 1 << bit;
                }
            }
            prop_assert_eq!(merged, oracle.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn identity_fields_read_alone_equal_the_whole_documents(
            fields in prop::collection::btree_map(
                prop_oneof![Just("domains".to_string()), Just("emails".to_string()),
                    Just("phones".to_string()), Just("name".to_string()), "[a-z]{1,6}"],
                json_value(),
                0..6,
            )
        ) {
            let doc: Doc = fields.into_iter().collect();
            let bytes = serde_json::to_vec(&doc).unwrap();
            let read: IdentityFields = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!([read.domains.0, read.emails.0, read.phones.0], fields_of(&doc));
        }
    }
}
