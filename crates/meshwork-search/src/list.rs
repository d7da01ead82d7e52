//! List views served by the index (DESIGN.md decision 4): the CRM's list endpoints filter, sort,
//! page, count and total deal amounts by stage here instead of decrypting the workspace's records.
//!
//! - **Filters** are exact term look-ups: the server indexes each record under the terms its
//!   filter language needs (`meshwork_crm::Filter::index_terms`) and asks for [`FieldClause`]s.
//! - **Sorting** reads fast fields: creation (record ids are UUIDv7, so id order is creation
//!   order), last change, name (folded, lower-case) or amount. Items without the sort value come
//!   last in either direction; ties are broken by id, so the order is total.
//! - **Pages** are keyset pages: a [`ListCursor`] holds the last item's sort value and id, and the
//!   next page starts strictly after it, so items added or removed between two pages shift no
//!   other item. In creation order an item is never listed twice; in another order an item
//!   whose sort value changes between two pages (a record edited, sorted by `updated`) moves,
//!   and can appear again on a later page or not at all.
//! - **Counts and totals** cover every match, not just the page: deal amounts are summed exactly
//!   (decimal, in units of 10⁻⁴) per stage and currency.

use crate::index::SearchIndex;
use crate::query::ParsedQuery;
use crate::{Access, Result, SearchOptions};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::str::FromStr;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term};

/// Decimal places kept in amount sums (the CRM's amounts have at most four).
pub(crate) const AMOUNT_SCALE: i64 = 10_000;

/// What a list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    /// Creation order (the default).
    Created,
    /// The last change.
    Updated,
    /// The title (a contact's name, a company's or deal's name), case- and accent-folded.
    Name,
    /// A deal's amount.
    Amount,
}

impl SortField {
    const ALL: [(SortField, &'static str, char); 4] = [
        (SortField::Created, "created", 'c'),
        (SortField::Updated, "updated", 'u'),
        (SortField::Name, "name", 'n'),
        (SortField::Amount, "amount", 'a'),
    ];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(f, _, _)| *f == self).unwrap().1
    }

    fn code(self) -> char {
        Self::ALL.iter().find(|(f, _, _)| *f == self).unwrap().2
    }
}

/// A sort field and direction, written `name` (ascending) or `-name` (descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortOrder {
    pub field: SortField,
    pub descending: bool,
}

impl Default for SortOrder {
    fn default() -> Self {
        Self {
            field: SortField::Created,
            descending: false,
        }
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.descending { "-" } else { "" };
        write!(f, "{dir}{}", self.field.name())
    }
}

/// An unknown sort field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot sort by {0:?}; sort by created, updated, name or amount, with a leading - for descending order")]
pub struct UnknownSort(pub String);

impl FromStr for SortOrder {
    type Err = UnknownSort;

    fn from_str(s: &str) -> std::result::Result<Self, UnknownSort> {
        let t = s.trim();
        let (descending, name) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        SortField::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(field, _, _)| SortOrder {
                field: *field,
                descending,
            })
            .ok_or_else(|| UnknownSort(s.to_string()))
    }
}

/// An item's value for the sort, comparable across segments.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    /// A number mapped to `u64` so that integer order is the number's order.
    Num(u64),
    Str(String),
}

/// Where a page ended: the next page starts strictly after this item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    sort: SortOrder,
    key: Option<SortValue>,
    id: u128,
}

/// A cursor that is not one this index handed out, or that belongs to another sort order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor from a previous page")]
    Malformed,
    #[error("belongs to a list sorted by {0}; pass the same sort as the page it came from")]
    OtherSort(SortOrder),
}

impl ListCursor {
    /// Parses a cursor for a list sorted by `sort`.
    pub fn parse(s: &str, sort: SortOrder) -> std::result::Result<Self, CursorError> {
        let mut parts = s.split('.');
        let (Some(head), Some(key), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        let mut head_chars = head.chars();
        let (Some(code), Some(dir), None) =
            (head_chars.next(), head_chars.next(), head_chars.next())
        else {
            return Err(CursorError::Malformed);
        };
        let field = SortField::ALL
            .iter()
            .find(|(_, _, c)| *c == code)
            .map(|(f, _, _)| *f)
            .ok_or(CursorError::Malformed)?;
        let descending = match dir {
            'a' => false,
            'd' => true,
            _ => return Err(CursorError::Malformed),
        };
        let found = SortOrder { field, descending };
        let id = (id.len() == 32)
            .then(|| u128::from_str_radix(id, 16).ok())
            .flatten()
            .ok_or(CursorError::Malformed)?;
        let key = match key.split_at_checked(1) {
            Some(("m", "")) => None,
            Some(("n", hex)) if hex.len() == 16 => Some(SortValue::Num(
                u64::from_str_radix(hex, 16).map_err(|_| CursorError::Malformed)?,
            )),
            Some(("s", hex)) if hex.len() % 2 == 0 => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
                    .ok_or(CursorError::Malformed)?;
                Some(SortValue::Str(
                    String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?,
                ))
            }
            _ => return Err(CursorError::Malformed),
        };
        let expected_str = field == SortField::Name;
        if key
            .as_ref()
            .is_some_and(|k| matches!(k, SortValue::Str(_)) != expected_str)
        {
            return Err(CursorError::Malformed);
        }
        if found != sort {
            return Err(CursorError::OtherSort(found));
        }
        Ok(Self { sort, key, id })
    }
}

impl fmt::Display for ListCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.sort.descending { 'd' } else { 'a' };
        write!(f, "{}{dir}.", self.sort.field.code())?;
        match &self.key {
            None => f.write_str("m")?,
            Some(SortValue::Num(n)) => write!(f, "n{n:016x}")?,
            Some(SortValue::Str(s)) => {
                f.write_str("s")?;
                for b in s.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
            }
        }
        write!(f, ".{:032x}", self.id)
    }
}

/// One filter clause: the item carries `term`, or (with `or_absent`) lacks that term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldClause {
    pub term: String,
    pub or_absent: Option<String>,
}

/// A list request.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// One of [`crate::KINDS`].
    pub kind: String,
    pub clauses: Vec<FieldClause>,
    /// Search-box text narrowing the list (words, prefixes, typos, filters), as in a search.
    pub text: Option<ParsedQuery>,
    /// Only these ids (a record's links, read from the store).
    pub ids: Option<Vec<String>>,
    pub sort: SortOrder,
    pub after: Option<ListCursor>,
    /// Items per page (at least 1).
    pub limit: usize,
    /// The searcher's user id, for `owner:me` in `text`.
    pub me: Option<String>,
}

/// The deals of one stage of one pipeline in one currency.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StageTotal {
    /// The pipeline's id.
    pub pipeline: String,
    /// The stage's id (unique within its pipeline).
    pub stage: String,
    /// Absent for deals without a currency.
    pub currency: Option<String>,
    /// Deals in this stage and currency.
    pub count: u64,
    /// The sum of their amounts (deals without one count as nothing), as a decimal string.
    pub amount: String,
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage {
    /// The page's item ids, in order.
    pub ids: Vec<String>,
    /// The cursor of the next page; `None` on the last one.
    pub next: Option<ListCursor>,
    /// Every match, on all pages.
    pub total: u64,
    /// For deals: counts and amounts per pipeline, stage and currency over every match, in
    /// id order.
    pub stages: Vec<StageTotal>,
}

/// The 128 bits that order an id: a UUID's (record ids are UUIDv7: creation order), or, for ids
/// of another shape, a hash that still orders them totally.
pub(crate) fn id_bits(id: &str) -> u128 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 {
        if let Ok(v) = u128::from_str_radix(&hex, 16) {
            return v;
        }
    }
    // FNV-1a, 128-bit.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in id.as_bytes() {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

/// The name an item sorts by: folded like the search analyzer folds, at most 200 bytes.
pub(crate) fn sort_name(analyzer: &mut tantivy::tokenizer::TextAnalyzer, title: &str) -> String {
    let mut s = crate::schema::tokens(analyzer, title).join(" ");
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A decimal amount as whole units and ten-thousandths (same sign), or `None` when it is not one.
pub(crate) fn amount_parts(text: &str) -> Option<(i64, i64)> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 18
        || frac.len() > 4
    {
        return None;
    }
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f = frac.to_string();
    while f.len() < 4 {
        f.push('0');
    }
    let part: i64 = f.parse().ok()?;
    Some(if neg { (-whole, -part) } else { (whole, part) })
}

fn format_units(units: i128) -> String {
    let scale = i128::from(AMOUNT_SCALE);
    let sign = if units < 0 { "-" } else { "" };
    let u = units.unsigned_abs();
    let whole = u / scale as u128;
    let frac = format!("{:04}", u % scale as u128);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.len() < 2 {
        format!("{frac:0<2}")
    } else {
        frac.to_string()
    };
    format!("{sign}{whole}.{frac}")
}

fn i64_key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn f64_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Orders two (key, id) pairs as the list does: values in the sort's direction, ties by id in
/// the same direction, items without a value last.
fn list_order<K: Ord>(desc: bool, a: (&Option<K>, u128), b: (&Option<K>, u128)) -> Ordering {
    match (a.0, b.0) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) => {
            let o = x.cmp(y).then(a.1.cmp(&b.1));
            if desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// [`list_order`] on the sort values alone (equal values are equal here).
fn key_order<K: Ord>(desc: bool, a: &Option<K>, b: &Option<K>) -> Ordering {
    match (a, b) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) if desc => y.cmp(x),
        (x, y) => x.cmp(y),
    }
}

impl SearchIndex {
    /// A page of the list `q`, as `access` may see it.
    /// How many items of type `kind` the access filter lets through (a workspace's overview):
    /// a count of two intersected postings, with no ordering or paging to pay for.
    pub fn count(&self, kind: &str, access: &Access) -> Result<u64> {
        if access.is_empty() {
            return Ok(0);
        }
        let f = self.fields();
        let searcher = self.searcher();
        let query = BooleanQuery::new(vec![
            (Occur::Must, self.access_query(&searcher, access)?),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, kind),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        Ok(searcher.search(&query, &tantivy::collector::Count)? as u64)
    }

    pub fn list(&self, q: &ListQuery, access: &Access) -> Result<ListPage> {
        let empty = ListPage {
            ids: Vec::new(),
            next: None,
            total: 0,
            stages: Vec::new(),
        };
        if access.is_empty() || q.ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(empty);
        }
        let f = self.fields();
        let searcher = self.searcher();
        let opts = SearchOptions {
            me: q.me.clone(),
            ..Default::default()
        };
        // Without text, the access filter alone (a search without words adds an all-items
        // clause to intersect with).
        let base = match &q.text {
            Some(text) => self.build_query(&searcher, text, access, &opts)?,
            None => self.access_query(&searcher, access)?,
        };
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, base),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, &q.kind),
                    IndexRecordOption::Basic,
                )),
            ),
        ];
        let term = |t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f.fields, t),
                IndexRecordOption::Basic,
            ))
        };
        for c in &q.clauses {
            let clause: Box<dyn Query> = match &c.or_absent {
                None => term(&c.term),
                Some(presence) => Box::new(BooleanQuery::new(vec![
                    (Occur::Should, term(&c.term)),
                    (
                        Occur::Should,
                        Box::new(BooleanQuery::new(vec![
                            (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                            (Occur::MustNot, term(presence)),
                        ])),
                    ),
                ])),
            };
            must.push((Occur::Must, clause));
        }
        if let Some(ids) = &q.ids {
            must.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    ids.iter().map(|id| Term::from_field_text(f.id, id)),
                )),
            ));
        }
        let query = BooleanQuery::new(must);
        let collector = ListCollector {
            sort: q.sort,
            after: q.after.clone().filter(|c| c.sort == q.sort),
            keep: q.limit.max(1) + 1,
            totals: q.kind == "deal",
        };
        let fruit = searcher.search(&query, &collector)?;
        let more = fruit.top.len() > q.limit.max(1);
        let mut ids = Vec::with_capacity(fruit.top.len());
        let mut last = None;
        for e in fruit.top.into_iter().take(q.limit.max(1)) {
            let doc: TantivyDocument = searcher.doc(e.address)?;
            ids.push(
                doc.get_first(f.id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
            );
            last = Some(ListCursor {
                sort: q.sort,
                key: e.key,
                id: e.id,
            });
        }
        Ok(ListPage {
            ids,
            next: if more { last } else { None },
            total: fruit.count,
            stages: fruit
                .totals
                .into_iter()
                .map(|((pipeline, stage, currency), (count, units))| StageTotal {
                    pipeline,
                    stage,
                    currency,
                    count,
                    amount: format_units(units),
                })
                .collect(),
        })
    }
}

struct ListCollector {
    sort: SortOrder,
    after: Option<ListCursor>,
    /// The page plus one, to know whether another page follows.
    keep: usize,
    totals: bool,
}

/// An item kept for the page.
#[derive(Debug)]
struct Entry {
    key: Option<SortValue>,
    id: u128,
    address: DocAddress,
}

#[derive(Debug, Default)]
struct ListFruit {
    top: Vec<Entry>,
    count: u64,
    totals: BTreeMap<(String, String, Option<String>), (u64, i128)>,
    /// A column read that failed while harvesting: the whole list fails with it.
    error: Option<String>,
}

/// A segment's sort column; string values are segment ordinals mapped to `2·ord + 1`, so that a
/// cursor between two ordinals has a place (`2·ord`) of its own.
enum KeyColumn {
    /// Creation order is id order (ids are time-ordered, UUIDv7): the key is the id's high 64
    /// bits, so most items lose on it alone, as on any other key, before the low bits are read.
    Created(Column<u64>),
    I64(Column<i64>),
    F64(Column<f64>),
    Str(Option<StrColumn>),
}

impl KeyColumn {
    fn get(&self, doc: DocId) -> Option<u64> {
        match self {
            KeyColumn::Created(hi) => Some(hi.first(doc).unwrap_or(0)),
            KeyColumn::I64(c) => c.first(doc).map(i64_key),
            KeyColumn::F64(c) => c.first(doc).map(f64_key),
            KeyColumn::Str(c) => c.as_ref()?.ords().first(doc).map(|o| 2 * o + 1),
        }
    }

    /// The segment's key for a cursor's value.
    fn place(&self, key: &Option<SortValue>) -> tantivy::Result<Option<u64>> {
        Ok(match (self, key) {
            (_, None) => None,
            (KeyColumn::Str(col), Some(SortValue::Str(s))) => {
                let Some(col) = col else {
                    // No item of the segment has a name: every named cursor sorts before them.
                    return Ok(Some(0));
                };
                // The first ordinal whose term is not below `s`.
                let (mut lo, mut hi) = (0u64, col.num_terms() as u64);
                let mut buf = String::new();
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    buf.clear();
                    col.ord_to_str(mid, &mut buf)?;
                    if buf.as_str() < s.as_str() {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                buf.clear();
                let exact =
                    lo < col.num_terms() as u64 && col.ord_to_str(lo, &mut buf)? && buf == *s;
                Some(if exact { 2 * lo + 1 } else { 2 * lo })
            }
            (_, Some(SortValue::Num(n))) => Some(*n),
            (_, Some(SortValue::Str(_))) => None,
        })
    }

    fn value(&self, key: Option<u64>) -> tantivy::Result<Option<SortValue>> {
        Ok(match (self, key) {
            (_, None) => None,
            (KeyColumn::Str(Some(col)), Some(k)) => {
                let mut s = String::new();
                col.ord_to_str((k - 1) / 2, &mut s)?;
                Some(SortValue::Str(s))
            }
            (KeyColumn::Str(None), Some(_)) => None,
            (_, Some(k)) => Some(SortValue::Num(k)),
        })
    }
}

struct SegmentList {
    segment: SegmentOrdinal,
    desc: bool,
    keep: usize,
    hi: Column<u64>,
    lo: Column<u64>,
    key: KeyColumn,
    /// The cursor in this segment's key space, when there is one.
    after: Option<(Option<u64>, u128)>,
    /// The best `keep` items so far; the top is the worst of them.
    heap: BinaryHeap<SegEntry>,
    count: u64,
    totals: Option<SegmentTotals>,
}

struct SegmentTotals {
    pipeline: Option<StrColumn>,
    stage: Option<StrColumn>,
    currency: Option<StrColumn>,
    int: Column<i64>,
    frac: Column<i64>,
    /// Count and amount per (pipeline, stage, currency) ordinals.
    sums: HashMap<[Option<u64>; 3], (u64, i128)>,
}

#[derive(Debug)]
struct SegEntry {
    desc: bool,
    key: Option<u64>,
    id: u128,
    doc: DocId,
}

impl Ord for SegEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        list_order(self.desc, (&self.key, self.id), (&other.key, other.id))
    }
}

impl PartialOrd for SegEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SegEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SegEntry {}

impl Collector for ListCollector {
    type Fruit = ListFruit;
    type Child = SegmentList;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentList> {
        let ff = reader.fast_fields();
        let key = match self.sort.field {
            SortField::Created => KeyColumn::Created(ff.u64("id_hi")?),
            SortField::Updated => KeyColumn::I64(ff.i64("updated")?),
            SortField::Amount => KeyColumn::F64(ff.f64("amount")?),
            SortField::Name => KeyColumn::Str(ff.str("sort_name")?),
        };
        let after = match &self.after {
            // A creation-order cursor from before its key was the id's high bits has none:
            // its id says where it is.
            Some(c) if matches!(key, KeyColumn::Created(_)) && c.key.is_none() => {
                Some((Some((c.id >> 64) as u64), c.id))
            }
            Some(c) => Some((key.place(&c.key)?, c.id)),
            None => None,
        };
        let totals = if self.totals {
            Some(SegmentTotals {
                pipeline: ff.str("pipeline_id")?,
                stage: ff.str("stage_id")?,
                currency: ff.str("currency")?,
                int: ff.i64("amount_int")?,
                frac: ff.i64("amount_frac")?,
                sums: HashMap::new(),
            })
        } else {
            None
        };
        Ok(SegmentList {
            segment,
            desc: self.sort.descending,
            keep: self.keep,
            hi: ff.u64("id_hi")?,
            lo: ff.u64("id_lo")?,
            key,
            after,
            heap: BinaryHeap::with_capacity(self.keep + 1),
            count: 0,
            totals,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<ListFruit>) -> tantivy::Result<ListFruit> {
        let mut out = ListFruit::default();
        for fruit in fruits {
            if let Some(e) = fruit.error {
                return Err(tantivy::TantivyError::InternalError(e));
            }
            out.count += fruit.count;
            out.top.extend(fruit.top);
            for (k, (n, s)) in fruit.totals {
                let t = out.totals.entry(k).or_default();
                t.0 += n;
                t.1 += s;
            }
        }
        let desc = self.sort.descending;
        out.top
            .sort_by(|a, b| list_order(desc, (&a.key, a.id), (&b.key, b.id)));
        out.top.truncate(self.keep);
        Ok(out)
    }
}

impl SegmentCollector for SegmentList {
    type Fruit = ListFruit;

    fn collect(&mut self, doc: DocId, _: Score) {
        let key = self.key.get(doc);
        self.count += 1;
        if let Some(t) = &mut self.totals {
            let pipeline = t.pipeline.as_ref().and_then(|c| c.ords().first(doc));
            let stage = t.stage.as_ref().and_then(|c| c.ords().first(doc));
            let currency = t.currency.as_ref().and_then(|c| c.ords().first(doc));
            let units = match (t.int.first(doc), t.frac.first(doc)) {
                (Some(i), Some(f)) => i128::from(i) * i128::from(AMOUNT_SCALE) + i128::from(f),
                _ => 0,
            };
            let e = t.sums.entry([pipeline, stage, currency]).or_default();
            e.0 += 1;
            e.1 += units;
        }
        // Most items lose on their sort value alone, before their id is read: they sort after
        // the worst item kept, or before the cursor.
        if self.heap.len() >= self.keep
            && self
                .heap
                .peek()
                .is_some_and(|worst| key_order(self.desc, &key, &worst.key) == Ordering::Greater)
        {
            return;
        }
        if let Some((after_key, _)) = &self.after {
            if key_order(self.desc, &key, after_key) == Ordering::Less {
                return;
            }
        }
        let id = (u128::from(self.hi.first(doc).unwrap_or(0)) << 64)
            | u128::from(self.lo.first(doc).unwrap_or(0));
        if let Some((after_key, after_id)) = &self.after {
            if list_order(self.desc, (&key, id), (after_key, *after_id)) != Ordering::Greater {
                return;
            }
        }
        let entry = SegEntry {
            desc: self.desc,
            key,
            id,
            doc,
        };
        if self.heap.len() < self.keep {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|worst| entry < *worst) {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    fn harvest(self) -> ListFruit {
        let mut error = None;
        let mut top = Vec::with_capacity(self.heap.len());
        for e in self.heap.into_vec() {
            let key = match self.key.value(e.key) {
                Ok(k) => k,
                // A name that cannot be read would make a wrong cursor: fail the list instead.
                Err(err) => {
                    error = Some(format!("reading a sort value: {err}"));
                    None
                }
            };
            top.push(Entry {
                key,
                id: e.id,
                address: DocAddress::new(self.segment, e.doc),
            });
        }
        let mut totals = BTreeMap::new();
        if let Some(t) = self.totals {
            let mut name = |col: &Option<StrColumn>, ord: Option<u64>| -> Option<String> {
                let mut s = String::new();
                match (col, ord) {
                    (Some(c), Some(o)) => match c.ord_to_str(o, &mut s) {
                        Ok(true) => Some(s),
                        Ok(false) => None,
                        Err(err) => {
                            error = Some(format!("reading a stage total: {err}"));
                            None
                        }
                    },
                    _ => None,
                }
            };
            for ([pipeline, stage, currency], v) in t.sums {
                let key = (
                    name(&t.pipeline, pipeline).unwrap_or_default(),
                    name(&t.stage, stage).unwrap_or_default(),
                    name(&t.currency, currency),
                );
                let e: &mut (u64, i128) = totals.entry(key).or_default();
                e.0 += v.0;
                e.1 += v.1;
            }
        }
        ListFruit {
            top,
            count: self.count,
            totals,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_orders_parse_and_print() {
        for s in ["created", "-created", "updated", "-name", "amount"] {
            assert_eq!(s.parse::<SortOrder>().unwrap().to_string(), s);
        }
        let err = "colour".parse::<SortOrder>().unwrap_err();
        assert!(err.to_string().contains("\"colour\""), "{err}");
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts_and_garbage() {
        let name: SortOrder = "-name".parse().unwrap();
        for key in [
            None,
            Some(SortValue::Str("zoë o'brien.".into())),
            Some(SortValue::Str(String::new())),
        ] {
            let c = ListCursor {
                sort: name,
                key,
                id: 0x0190_0000_0000_7000_8000_0000_0000_0001,
            };
            assert_eq!(ListCursor::parse(&c.to_string(), name).unwrap(), c);
        }
        let amount: SortOrder = "amount".parse().unwrap();
        let c = ListCursor {
            sort: amount,
            key: Some(SortValue::Num(f64_key(-12.5))),
            id: 7,
        };
        assert_eq!(ListCursor::parse(&c.to_string(), amount).unwrap(), c);
        assert_eq!(
            ListCursor::parse(&c.to_string(), name),
            Err(CursorError::OtherSort(amount))
        );
        for bad in [
            "",
            "x",
            "ca.m",
            "zz.m.00000000000000000000000000000001",
            "ca.q.00000000000000000000000000000001",
            "ca.n12.00000000000000000000000000000001",
            "na.n0000000000000001.00000000000000000000000000000001",
            "na.sff.00000000000000000000000000000001",
            "ca.m.1",
            "ca.m.0000000000000000000000000000000g",
        ] {
            assert_eq!(
                ListCursor::parse(bad, SortOrder::default()).err(),
                Some(CursorError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn number_keys_keep_the_numbers_order() {
        let xs = [-1e300, -2.5, -0.0, 0.0, 1e-9, 3.0, 1e300];
        for w in xs.windows(2) {
            assert!(f64_key(w[0]) <= f64_key(w[1]), "{w:?}");
        }
        let is = [i64::MIN, -1, 0, 1, i64::MAX];
        for w in is.windows(2) {
            assert!(i64_key(w[0]) < i64_key(w[1]), "{w:?}");
        }
    }

    #[test]
    fn amounts_are_summed_exactly() {
        assert_eq!(amount_parts("1234.50"), Some((1234, 5000)));
        assert_eq!(amount_parts("-0.0001"), Some((0, -1)));
        assert_eq!(amount_parts("12"), Some((12, 0)));
        assert_eq!(amount_parts("1.2.3"), None);
        assert_eq!(amount_parts("1e5"), None);
        assert_eq!(format_units(12_345_000), "1234.50");
        assert_eq!(format_units(-1), "-0.0001");
        assert_eq!(format_units(0), "0.00");
        // 0.1 + 0.2, which floating point gets wrong.
        let (a, b) = (amount_parts("0.10").unwrap(), amount_parts("0.20").unwrap());
        let units = |p: (i64, i64)| i128::from(p.0) * 10_000 + i128::from(p.1);
        assert_eq!(format_units(units(a) + units(b)), "0.30");
    }
}
