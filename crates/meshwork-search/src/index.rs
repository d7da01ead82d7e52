//! [`SearchIndex`]: one workspace's index, its writes in change-feed order and its queries.

use crate::acl::Access;
use crate::dir::SealedDirectory;
use crate::highlight::{snippet, Matcher};
use crate::query::{typo_budget, Clause, FilterField, ParsedQuery};
use crate::schema::{self, tokens, Fields, ANALYZER};
use crate::Result;
use meshwork_keyring::DataKey;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BitSetDocSet, Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery,
    ConstScorer, EmptyScorer, EnableScoring, Explanation, FuzzyTermQuery, Occur, PhrasePrefixQuery,
    PhraseQuery, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, SegmentOrdinal,
    SegmentReader, TantivyDocument, Term,
};
use tantivy::{DocSet, Searcher, TERMINATED};
use tantivy_common::BitSet;

/// The kinds of item in the index: the CRM's record kinds, then connector documents.
pub const KINDS: [&str; 12] = [
    "company",
    "contact",
    "deal",
    "pipeline",
    "note",
    "activity",
    "communication",
    "file",
    "form",
    "form_submission",
    "field",
    "document",
];
pub const DOCUMENT_KIND: &str = "document";

/// One item as the index sees it: the server builds it from a record or a document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexDoc {
    pub id: String,
    /// One of [`KINDS`].
    pub kind: String,
    pub title: String,
    /// Everything else searchable, emails and phone numbers included.
    pub body: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    /// The principals allowed to see it ([`crate::CRM`], [`crate::EVERYONE`], users, groups).
    pub acl: Vec<String>,
    /// A deal's stage id, stage name and state (`open`, `won`, `lost`).
    pub stage: Vec<String>,
    pub owner: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    /// A deal's pipeline id and name.
    pub pipeline: Vec<String>,
    pub url: Option<String>,
    pub updated: i64,
    /// A deal's amount, as the CRM stores it (a decimal string like `1234.50`).
    pub amount: Option<String>,
    /// A deal's currency code.
    pub currency: Option<String>,
    /// A deal's pipeline and stage ids, which list views total amounts by (a stage id is
    /// unique only within its pipeline).
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    /// The terms list-view filters look up ([`crate::FieldClause`]).
    pub fields: Vec<String>,
    /// A file indexed by its name while its text is read in the background: listed by
    /// [`SearchIndex::pending_texts`], so a process that stops before it is done can resume.
    pub text_pending: bool,
}

/// The term marking [`IndexDoc::text_pending`] (outside the `v…`/`p…` terms of list filters).
const TEXT_PENDING: &str = "x\u{1f}text_pending";

/// A change to apply.
#[derive(Clone, Debug)]
pub enum IndexOp {
    Upsert(Box<IndexDoc>),
    Delete(String),
}

#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Hits per type (1–100).
    pub limit: usize,
    /// The searcher's user id, for `owner:me`.
    pub me: Option<String>,
    /// The snippet length in bytes.
    pub snippet_bytes: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            limit: 10,
            me: None,
            snippet_bytes: 160,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Hit {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The title, HTML-escaped, with matches in `<mark>`.
    pub title: String,
    /// A window of the text around the first match, HTML-escaped, with matches in `<mark>`.
    pub snippet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub updated_at: i64,
    pub score: f32,
    /// The searcher pinned this document (set by the app from their marks).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// The searcher's own note on this document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Group {
    #[serde(rename = "type")]
    pub kind: String,
    /// Every match of this type the searcher may open.
    pub count: u64,
    pub hits: Vec<Hit>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SearchResults {
    /// Every match the searcher may open.
    pub total: u64,
    /// Groups by type, the group with the best hit first (by recency when browsing).
    pub groups: Vec<Group>,
}

impl SearchResults {
    /// Every hit, group after group.
    pub fn hits(&self) -> impl Iterator<Item = &Hit> {
        self.groups.iter().flat_map(|g| g.hits.iter())
    }
}

/// One workspace's index.
pub struct SearchIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    f: Fields,
    analyzer: TextAnalyzer,
    applied: AtomicI64,
    dir: Option<SealedDirectory>,
    /// The access filter of the last principal set, for the searcher generation it was built on.
    acl_cache: Mutex<Option<(Access, u64, AclFilter)>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("applied", &self.applied_seq())
            .finish_non_exhaustive()
    }
}

/// Indexing threads and memory of a writer.
#[derive(Clone, Copy, Debug)]
pub struct WriterBudget {
    pub threads: usize,
    pub memory_bytes: usize,
}

impl Default for WriterBudget {
    fn default() -> Self {
        Self {
            threads: 1,
            memory_bytes: 64 << 20,
        }
    }
}

impl SearchIndex {
    /// Opens the sealed index at `path` (creating an empty one when there is none). An index
    /// that cannot be read answers an error whose [`crate::SearchError::needs_rebuild`] is true.
    pub fn open(path: &Path, key: Arc<DataKey>, scope: &str) -> Result<Self> {
        Self::open_with(path, key, scope, WriterBudget::default())
    }

    pub fn open_with(
        path: &Path,
        key: Arc<DataKey>,
        scope: &str,
        budget: WriterBudget,
    ) -> Result<Self> {
        let dir = SealedDirectory::open(path, key, scope)?;
        let (schema, f) = schema::build();
        let index = if Index::exists(&dir).map_err(tantivy::TantivyError::from)? {
            let index = Index::open(dir.clone())?;
            if index.schema() != schema {
                return Err(tantivy::TantivyError::SchemaError(
                    "the index was built with another schema".into(),
                )
                .into());
            }
            index
        } else {
            Index::create(dir.clone(), schema, tantivy::IndexSettings::default())?
        };
        let applied = match index.load_metas()?.payload {
            Some(p) => p.parse().map_err(|_| {
                tantivy::TantivyError::DataCorruption(tantivy::error::DataCorruption::comment_only(
                    format!("the index's applied sequence {p:?} is not a number"),
                ))
            })?,
            None => 0,
        };
        Self::finish(index, f, applied, Some(dir), budget)
    }

    /// An index in memory only (tests and benchmarks).
    pub fn in_memory() -> Result<Self> {
        let (schema, f) = schema::build();
        Self::finish(
            Index::create_in_ram(schema),
            f,
            0,
            None,
            WriterBudget {
                threads: 1,
                memory_bytes: 16 << 20,
            },
        )
    }

    fn finish(
        index: Index,
        f: Fields,
        applied: i64,
        dir: Option<SealedDirectory>,
        budget: WriterBudget,
    ) -> Result<Self> {
        index.tokenizers().register(ANALYZER, schema::analyzer());
        let writer = index.writer_with_num_threads(
            budget.threads.max(1),
            budget.memory_bytes.max(16 << 20) * budget.threads.max(1),
        )?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            f,
            analyzer: schema::analyzer(),
            applied: AtomicI64::new(applied),
            dir,
            acl_cache: Mutex::new(None),
        })
    }

    /// The last change-feed sequence number this index has applied.
    pub fn applied_seq(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Items in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decrypted index bytes held in memory (0 for an in-memory index).
    pub fn memory_bytes(&self) -> usize {
        self.dir.as_ref().map_or(0, SealedDirectory::memory_bytes)
    }

    fn document(&self, d: &IndexDoc) -> TantivyDocument {
        let f = &self.f;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &d.id);
        doc.add_text(f.kind, &d.kind);
        doc.add_u64(f.kind_code, kind_code(&d.kind));
        doc.add_text(f.title, &d.title);
        let mut body = String::new();
        for e in &d.emails {
            body.push_str(e);
            body.push('\n');
        }
        for p in &d.phones {
            body.push_str(p);
            body.push('\n');
        }
        body.push_str(&d.body);
        doc.add_text(f.body, &body);
        for e in &d.emails {
            doc.add_text(f.email, e.trim().to_lowercase());
        }
        for p in &d.phones {
            let digits: String = p.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 4 {
                doc.add_pre_tokenized_text(f.phone, schema::phone_tokens(&digits));
            }
        }
        for a in &d.acl {
            doc.add_text(f.acl, a);
        }
        for s in &d.stage {
            doc.add_text(f.stage, s.to_lowercase());
        }
        if let Some(o) = &d.owner {
            doc.add_text(f.owner, o);
        }
        if let Some(s) = &d.source {
            doc.add_text(f.source, s.to_lowercase());
        }
        for t in &d.tags {
            doc.add_text(f.tag, t.to_lowercase());
        }
        for p in &d.pipeline {
            doc.add_text(f.pipeline, p.to_lowercase());
        }
        if let Some(u) = &d.url {
            doc.add_text(f.url, u);
        }
        doc.add_i64(f.updated, d.updated);
        if let Some(a) = &d.amount {
            if let Some((int, frac)) = crate::list::amount_parts(a) {
                doc.add_i64(f.amount_int, int);
                doc.add_i64(f.amount_frac, frac);
                doc.add_f64(
                    f.amount,
                    int as f64 + frac as f64 / crate::list::AMOUNT_SCALE as f64,
                );
            }
        }
        let id = crate::list::id_bits(&d.id);
        doc.add_u64(f.id_hi, (id >> 64) as u64);
        doc.add_u64(f.id_lo, id as u64);
        let mut analyzer = self.analyzer.clone();
        let name = crate::list::sort_name(&mut analyzer, &d.title);
        if !name.is_empty() {
            doc.add_text(f.sort_name, &name);
        }
        for t in &d.fields {
            doc.add_text(f.fields, t);
        }
        if d.text_pending {
            doc.add_text(f.fields, TEXT_PENDING);
        }
        if let Some(p) = &d.pipeline_id {
            doc.add_text(f.pipeline_id, p);
        }
        if let Some(s) = &d.stage_id {
            doc.add_text(f.stage_id, s);
        }
        if let Some(c) = &d.currency {
            doc.add_text(f.currency, c);
        }
        doc
    }

    /// The stored ids of `docs`, read in index order: the document store is kept in compressed
    /// blocks of many documents, so each block is decompressed once (in the set's hash order it
    /// was decompressed nearly once per document, most of a large population's evaluation).
    fn stored_ids(
        &self,
        searcher: &tantivy::Searcher,
        docs: std::collections::HashSet<tantivy::DocAddress>,
    ) -> Result<Vec<String>> {
        let mut docs: Vec<tantivy::DocAddress> = docs.into_iter().collect();
        docs.sort_unstable();
        let mut ids = Vec::with_capacity(docs.len());
        for a in docs {
            let doc: TantivyDocument = searcher.doc(a)?;
            ids.push(text_of(&doc, self.f.id));
        }
        Ok(ids)
    }

    /// The ids of the items indexed with [`IndexDoc::text_pending`].
    pub fn pending_texts(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.f.fields, TEXT_PENDING),
            IndexRecordOption::Basic,
        );
        let docs = searcher.search(&query, &tantivy::collector::DocSetCollector)?;
        self.stored_ids(&searcher, docs)
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.f
    }

    pub(crate) fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    pub(crate) fn access_query(
        &self,
        searcher: &Searcher,
        access: &Access,
    ) -> Result<Box<dyn Query>> {
        Ok(Box::new(self.acl_filter(searcher, access)?))
    }

    pub(crate) fn build_query(
        &self,
        searcher: &Searcher,
        q: &ParsedQuery,
        access: &Access,
        opts: &SearchOptions,
    ) -> Result<Box<dyn Query>> {
        Ok(self.build(searcher, q, access, opts)?.0)
    }

    /// Applies `ops` and commits them with `seq` as the applied sequence number; the changes are
    /// searchable when this returns.
    pub fn apply(&self, ops: &[IndexOp], seq: i64) -> Result<()> {
        self.add(ops)?;
        self.commit_at(seq)
    }

    /// Adds operations without committing them: they become visible (and durable) with the
    /// next [`Index::commit_at`]. A long catch-up commits every so many pages instead of after
    /// each one.
    pub fn add(&self, ops: &[IndexOp]) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for op in ops {
            match op {
                IndexOp::Upsert(d) => {
                    writer.delete_term(Term::from_field_text(self.f.id, &d.id));
                    writer.add_document(self.document(d))?;
                }
                IndexOp::Delete(id) => {
                    writer.delete_term(Term::from_field_text(self.f.id, id));
                }
            }
        }
        Ok(())
    }

    /// Commits what was added, with `seq` as the applied sequence.
    pub fn commit_at(&self, seq: i64) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.commit(writer, seq)?;
        self.applied.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }

    /// Removes every item and sets the applied sequence to 0 (the start of a rebuild).
    pub fn clear(&self) -> Result<()> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        writer.delete_all_documents()?;
        self.commit(writer, 0)?;
        self.applied.store(0, Ordering::Release);
        Ok(())
    }

    /// Commits with `seq` as the applied sequence (the payload read back by `open`), then makes
    /// the commit visible to searches.
    fn commit(
        &self,
        mut writer: std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>>,
        seq: i64,
    ) -> Result<()> {
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&seq.to_string());
        commit.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Waits for merges to finish (after a rebuild, before measuring the index's size).
    pub fn wait_merging(self) -> Result<()> {
        let writer = self.writer.into_inner().unwrap_or_else(|e| e.into_inner());
        writer.wait_merging_threads()?;
        Ok(())
    }

    fn text_fields(&self) -> [(tantivy::schema::Field, f32); 2] {
        [(self.f.title, 3.0), (self.f.body, 1.0)]
    }

    fn word_query(&self, toks: &[String], prefix: bool, fuzzy: bool) -> Option<Box<dyn Query>> {
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match toks {
            [] => return None,
            [t] => {
                let budget = if fuzzy {
                    typo_budget(t.chars().count())
                } else {
                    0
                };
                for (field, boost) in self.text_fields() {
                    let term = Term::from_field_text(field, t);
                    should.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                            boost * 2.0,
                        )),
                    ));
                    if budget > 0 {
                        should.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(
                                Box::new(FuzzyTermQuery::new(term.clone(), budget, true)),
                                boost,
                            )),
                        ));
                    }
                    if prefix {
                        should.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(
                                Box::new(FuzzyTermQuery::new_prefix(term, budget, true)),
                                boost,
                            )),
                        ));
                    }
                }
                if t.len() >= 4 && t.chars().all(|c| c.is_ascii_digit()) {
                    should.push((Occur::Should, self.phone_query(t, prefix)));
                }
            }
            _ => {
                for (field, boost) in self.text_fields() {
                    let terms: Vec<Term> = toks
                        .iter()
                        .map(|t| Term::from_field_text(field, t))
                        .collect();
                    let q: Box<dyn Query> = if prefix {
                        // tantivy scores a phrase prefix with the whole index's statistics,
                        // whatever the provider (security finding 2): it only matches here,
                        // and the complete words before the prefix carry the score.
                        let complete = terms[..terms.len() - 1].to_vec();
                        let mut q: Vec<(Occur, Box<dyn Query>)> = vec![(
                            Occur::Must,
                            constant(Box::new(PhrasePrefixQuery::new(terms)), 0.0),
                        )];
                        q.extend(complete.into_iter().map(|t| {
                            (
                                Occur::Should,
                                Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs))
                                    as Box<dyn Query>,
                            )
                        }));
                        Box::new(BooleanQuery::new(q))
                    } else {
                        Box::new(PhraseQuery::new(terms))
                    };
                    should.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
                }
            }
        }
        Some(Box::new(BooleanQuery::new(should)))
    }

    /// A number whose digits end with `digits` (its last digits, or all of them); while
    /// typing (`prefix`), one with `digits` anywhere in it. Phrases of the digits' trigrams
    /// (see [`schema::phone_tokens`]), anchored at the number's end for the former.
    fn phone_query(&self, digits: &str, prefix: bool) -> Box<dyn Query> {
        let phrase = |digits: &str, anchored: bool| -> Box<dyn Query> {
            let mut terms: Vec<Term> = schema::phone_trigrams(digits)
                .map(|t| Term::from_field_text(self.f.phone, t))
                .collect();
            if anchored {
                terms.push(Term::from_field_text(self.f.phone, schema::PHONE_END));
            }
            Box::new(PhraseQuery::new(terms))
        };
        let mut should: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, phrase(digits, true))];
        // `+1 555 123 4567` finds `555-123-4567`: try the national number too.
        if digits.len() > 10 {
            should.push((Occur::Should, phrase(&digits[digits.len() - 10..], true)));
        }
        if prefix {
            should.push((Occur::Should, phrase(digits, false)));
        }
        // A number matches or it does not: how often its trigrams occur elsewhere says nothing
        // of relevance, and scoring them would cost a walk of long postings per query.
        constant(Box::new(BooleanQuery::new(should)), 2.0)
    }

    fn clause_query(&self, c: &Clause) -> Option<Box<dyn Query>> {
        let mut a = self.analyzer.clone();
        match c {
            Clause::Word { text, prefix } => self.word_query(&tokens(&mut a, text), *prefix, true),
            Clause::Phrase { text, prefix } => {
                self.word_query(&tokens(&mut a, text), *prefix, false)
            }
            Clause::Email { text, prefix } => {
                let mut should: Vec<(Occur, Box<dyn Query>)> = vec![(
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(
                            Term::from_field_text(self.f.email, text),
                            IndexRecordOption::Basic,
                        )),
                        4.0,
                    )),
                )];
                if let Some(q) = self.word_query(&tokens(&mut a, text), *prefix, false) {
                    should.push((Occur::Should, q));
                }
                Some(Box::new(BooleanQuery::new(should)))
            }
            Clause::Phone { digits, prefix } => Some(self.phone_query(digits, *prefix)),
        }
    }

    fn filter_query(&self, field: FilterField, value: &str, me: Option<&str>) -> Box<dyn Query> {
        let (f, value) = match field {
            FilterField::Type => (self.f.kind, value.to_string()),
            FilterField::Stage => (self.f.stage, value.to_string()),
            FilterField::Owner => match (value, me) {
                ("me", Some(me)) => (self.f.owner, me.to_string()),
                // `owner:me` without a user (an API key) matches nothing.
                ("me", None) => (self.f.owner, String::new()),
                _ => (self.f.owner, value.to_string()),
            },
            FilterField::Source => (self.f.source, value.to_string()),
            FilterField::Tag => (self.f.tag, value.to_string()),
            FilterField::Pipeline => (self.f.pipeline, value.to_string()),
        };
        Box::new(TermQuery::new(
            Term::from_field_text(f, &value),
            IndexRecordOption::Basic,
        ))
    }

    /// The query for `q` as `access` may see it: the access filter, the filters, then every
    /// clause (AND).
    fn build(
        &self,
        searcher: &Searcher,
        q: &ParsedQuery,
        access: &Access,
        opts: &SearchOptions,
    ) -> Result<(Box<dyn Query>, AclFilter)> {
        let filter = self.acl_filter(searcher, access)?;
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(filter.clone()))];
        for (field, value) in &q.filters {
            must.push((
                Occur::Must,
                self.filter_query(*field, value, opts.me.as_deref()),
            ));
        }
        let mut text = 0;
        for c in &q.clauses {
            if let Some(cq) = self.clause_query(c) {
                must.push((Occur::Must, cq));
                text += 1;
            }
        }
        if text == 0 && q.filters.is_empty() {
            must.push((Occur::Must, Box::new(AllQuery)));
        }
        Ok((Box::new(BooleanQuery::new(must)), filter))
    }

    /// The documents `access` may see in each segment of `searcher`, as bitsets read straight
    /// from the postings of its principals; kept for the next search with the same principals on
    /// the same searcher generation (a user typing runs many).
    fn acl_filter(&self, searcher: &Searcher, access: &Access) -> Result<AclFilter> {
        let generation = searcher.generation().generation_id();
        {
            let cache = self.acl_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((a, g, f)) = cache.as_ref() {
                if *g == generation && a == access {
                    return Ok(f.clone());
                }
            }
        }
        let mut sets = HashMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.f.acl)?;
            let mut bits = BitSet::with_max_value(segment.max_doc());
            let alive = segment.alive_bitset();
            for p in access.principals() {
                let term = Term::from_field_text(self.f.acl, p);
                if let Some(mut postings) = inverted
                    .read_postings(&term, IndexRecordOption::Basic)
                    .map_err(tantivy::TantivyError::from)?
                {
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        // Deleted documents are left out, so the statistics below count only
                        // live ones.
                        if alive.is_none_or(|a| a.is_alive(doc)) {
                            bits.insert(doc);
                        }
                        doc = postings.advance();
                    }
                }
            }
            sets.insert(segment.segment_id(), bits);
        }
        let docs = sets.values().map(|b| b.len() as u64).sum();
        let filter = AclFilter {
            sets: Arc::new(sets),
            docs,
            tokens: Arc::default(),
        };
        *self.acl_cache.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((access.clone(), generation, filter.clone()));
        Ok(filter)
    }

    /// Runs `q` as `access`: matches grouped by type, with counts and snippets. With no words
    /// (only filters, or nothing) it lists the most recently changed items.
    pub fn search(
        &self,
        q: &ParsedQuery,
        access: &Access,
        opts: &SearchOptions,
    ) -> Result<SearchResults> {
        // Fail closed: no principal, nothing visible.
        if access.is_empty() {
            return Ok(SearchResults::default());
        }
        let limit = opts.limit.clamp(1, 100);
        let searcher = self.reader.searcher();
        let (query, filter) = self.build(&searcher, q, access, opts)?;
        // Scores and ranking from the statistics of what `access` may read only (not the
        // index's own, even when that is everything: those count deleted documents too).
        let stats = AccessStats {
            filter: &filter,
            searcher: &searcher,
        };
        // Enough hits that every type can fill its group in the common case.
        let fetch = (limit * 4).clamp(40, 400);
        let (hits, counts): (Vec<(f32, DocAddress)>, [u64; KINDS.len()]) = if q.is_browse() {
            let (top, counts) = searcher.search(
                &query,
                &(
                    TopDocs::with_limit(fetch).order_by_fast_field::<i64>("updated", Order::Desc),
                    KindCounts,
                ),
            )?;
            (top.into_iter().map(|(_, a)| (0.0, a)).collect(), counts)
        } else {
            searcher.search_with_statistics_provider(
                &query,
                &(TopDocs::with_limit(fetch), KindCounts),
                &stats,
            )?
        };
        let mut analyzer = self.analyzer.clone();
        let matcher = Matcher::new(q, &mut analyzer);
        let mut groups: Vec<Group> = Vec::new();
        let mut index_of: BTreeMap<String, usize> = BTreeMap::new();
        for (score, address) in hits {
            // The type comes from the fast field: a hit whose group is full is never loaded.
            let code = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("kind_code")?
                .first(address.doc_id)
                .unwrap_or(KINDS.len() as u64 - 1) as usize;
            let kind = KINDS[code.min(KINDS.len() - 1)].to_string();
            let g = *index_of.entry(kind.clone()).or_insert_with(|| {
                groups.push(Group {
                    kind: kind.clone(),
                    count: counts[code.min(KINDS.len() - 1)],
                    hits: Vec::new(),
                });
                groups.len() - 1
            });
            if groups[g].hits.len() >= limit {
                continue;
            }
            let doc: TantivyDocument = searcher.doc(address)?;
            let title_text = text_of(&doc, self.f.title);
            let (title, _) = snippet(&mut analyzer, &matcher, &title_text, 300);
            let body_text = text_of(&doc, self.f.body);
            let (snip, _) = snippet(&mut analyzer, &matcher, &body_text, opts.snippet_bytes);
            groups[g].hits.push(Hit {
                id: text_of(&doc, self.f.id),
                kind,
                title,
                snippet: snip,
                url: opt_text(&doc, self.f.url),
                source: opt_text(&doc, self.f.source),
                updated_at: doc
                    .get_first(self.f.updated)
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                score,
                pinned: false,
                note: None,
            });
        }
        // Types whose matches all ranked below the fetched hits still show their count.
        for (code, &count) in counts.iter().enumerate() {
            if count > 0 && !index_of.contains_key(KINDS[code]) {
                groups.push(Group {
                    kind: KINDS[code].to_string(),
                    count,
                    hits: Vec::new(),
                });
            }
        }
        Ok(SearchResults {
            total: counts.iter().sum(),
            groups,
        })
    }

    /// The ids of every item `access` may see that matches `q`, and how many there are (for
    /// checking the index against an oracle, and for list views).
    pub fn matching_ids(
        &self,
        q: &ParsedQuery,
        access: &Access,
        opts: &SearchOptions,
    ) -> Result<(Vec<String>, u64)> {
        if access.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let searcher = self.reader.searcher();
        let (query, _) = self.build(&searcher, q, access, opts)?;
        let (docs, counts) =
            searcher.search(&query, &(tantivy::collector::DocSetCollector, KindCounts))?;
        let mut ids = self.stored_ids(&searcher, docs)?;
        ids.sort();
        Ok((ids, counts.iter().sum()))
    }

    /// [`Index::matching_ids`] for callers whose items all have UUID ids (CRM records): the ids
    /// as 128-bit values read from the `id_hi`/`id_lo` fast fields, sorted, without reading the
    /// document store. An item whose id is not a UUID would come back as a hash of it, so only
    /// callers that index nothing else may use it.
    pub fn matching_uuid_ids(
        &self,
        q: &ParsedQuery,
        access: &Access,
        opts: &SearchOptions,
    ) -> Result<Vec<u128>> {
        if access.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let (query, _) = self.build(&searcher, q, access, opts)?;
        let docs = searcher.search(&query, &tantivy::collector::DocSetCollector)?;
        let mut docs: Vec<tantivy::DocAddress> = docs.into_iter().collect();
        docs.sort_unstable();
        let mut ids = Vec::with_capacity(docs.len());
        let mut columns: Option<(u32, Column<u64>, Column<u64>)> = None;
        for a in docs {
            if columns.as_ref().map(|c| c.0) != Some(a.segment_ord) {
                let ff = searcher.segment_reader(a.segment_ord).fast_fields();
                columns = Some((a.segment_ord, ff.u64("id_hi")?, ff.u64("id_lo")?));
            }
            let (_, hi, lo) = columns.as_ref().expect("set above");
            match (hi.first(a.doc_id), lo.first(a.doc_id)) {
                (Some(hi), Some(lo)) => ids.push(u128::from(hi) << 64 | u128::from(lo)),
                // Every item is indexed with both; a missing one is a broken index, not an
                // item to leave out of a population quietly.
                _ => {
                    return Err(crate::SearchError::Tantivy(
                        tantivy::TantivyError::InternalError(format!(
                            "item {a:?} has no id_hi/id_lo fast field values"
                        )),
                    ))
                }
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

/// `q`'s matches, each scored `score`: its weight is built with scoring off, so no statistics
/// (document frequencies) are computed for it at all.
fn constant(q: Box<dyn Query>, score: Score) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(Box::new(Unscored(q)), score))
}

/// A query whose weight is built without scoring, whatever the search asks
/// (`ConstScoreQuery` alone passes scoring on to the query inside it).
#[derive(Debug)]
struct Unscored(Box<dyn Query>);

impl Clone for Unscored {
    fn clone(&self) -> Self {
        Self(self.0.box_clone())
    }
}

impl Query for Unscored {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let off = match scoring.searcher() {
            Some(s) => EnableScoring::disabled_from_searcher(s),
            None => EnableScoring::disabled_from_schema(scoring.schema()),
        };
        self.0.weight(off)
    }
}

/// A precomputed access filter: per segment, the documents the searcher's principals reach.
#[derive(Clone)]
struct AclFilter {
    sets: Arc<HashMap<SegmentId, BitSet>>,
    /// How many documents that is.
    docs: u64,
    /// Per text field, the tokens in those documents (from their field norms), computed once
    /// per filter when a query first scores on the field.
    tokens: Arc<Mutex<HashMap<tantivy::schema::Field, u64>>>,
}

/// BM25's statistics over the documents a caller may read, never the whole index (security
/// finding 2): document count, average field length and document frequencies. With the whole
/// index's, a caller could compare the scores of notes they wrote and count how many hidden
/// documents hold a word. A document's own length comes from its field norm, which depends on
/// nothing else. So the scores and the ranking a caller sees depend only on what they may read.
struct AccessStats<'a> {
    filter: &'a AclFilter,
    searcher: &'a Searcher,
}

impl AccessStats<'_> {
    fn readable<'b>(&'b self, segment: &SegmentReader) -> Option<&'b BitSet> {
        self.filter.sets.get(&segment.segment_id())
    }
}

impl Bm25StatisticsProvider for AccessStats<'_> {
    fn total_num_tokens(&self, field: tantivy::schema::Field) -> tantivy::Result<u64> {
        if let Some(n) = self
            .filter
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&field)
        {
            return Ok(*n);
        }
        let mut total = 0u64;
        for segment in self.searcher.segment_readers() {
            let Some(bits) = self.readable(segment) else {
                continue;
            };
            let norms = segment.get_fieldnorms_reader(field)?;
            let mut docs = BitSetDocSet::from(bits.clone());
            let mut doc = docs.doc();
            while doc != TERMINATED {
                total += u64::from(norms.fieldnorm(doc));
                doc = docs.advance();
            }
        }
        self.filter
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(field, total);
        Ok(total)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        // At least one, so an average over nothing is not a division by zero.
        Ok(self.filter.docs.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut n = 0u64;
        for segment in self.searcher.segment_readers() {
            let Some(bits) = self.readable(segment) else {
                continue;
            };
            let inverted = segment.inverted_index(term.field())?;
            if let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? {
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    n += u64::from(bits.contains(doc));
                    doc = postings.advance();
                }
            }
        }
        Ok(n)
    }
}

impl std::fmt::Debug for AclFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclFilter")
            .field("segments", &self.sets.len())
            .finish()
    }
}

impl Query for AclFilter {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for AclFilter {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.sets.get(&reader.segment_id()) {
            Some(bits) => Box::new(ConstScorer::new(BitSetDocSet::from(bits.clone()), boost)),
            // A segment the filter was not built for (never, within one searcher): nothing.
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        match self.sets.get(&reader.segment_id()) {
            Some(bits) if bits.contains(doc) => Ok(Explanation::new("access filter", 1.0)),
            _ => Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not visible to these principals"
            ))),
        }
    }
}

fn text_of(doc: &TantivyDocument, f: tantivy::schema::Field) -> String {
    opt_text(doc, f).unwrap_or_default()
}

fn opt_text(doc: &TantivyDocument, f: tantivy::schema::Field) -> Option<String> {
    doc.get_first(f)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn kind_code(kind: &str) -> u64 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KINDS.len() - 1) as u64
}

/// Counts matches per kind from the `kind_code` fast field.
struct KindCounts;

struct SegmentKindCounts {
    column: Column<u64>,
    counts: [u64; KINDS.len()],
}

impl Collector for KindCounts {
    type Fruit = [u64; KINDS.len()];
    type Child = SegmentKindCounts;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(SegmentKindCounts {
            column: reader.fast_fields().u64("kind_code")?,
            counts: [0; KINDS.len()],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut out = [0; KINDS.len()];
        for f in fruits {
            for (o, c) in out.iter_mut().zip(f) {
                *o += c;
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentKindCounts {
    type Fruit = [u64; KINDS.len()];

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(code) = self.column.first(doc) {
            if let Some(c) = self.counts.get_mut(code as usize) {
                *c += 1;
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.counts
    }
}
