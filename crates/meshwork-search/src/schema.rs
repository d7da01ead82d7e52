//! The index schema and the text analyzer shared by indexing, querying and highlighting.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, PreTokenizedString, RemoveLongFilter, SimpleTokenizer,
    TextAnalyzer, Token,
};

/// The analyzer's name in the index's tokenizer manager.
pub const ANALYZER: &str = "meshwork";

/// Splits on anything that is not a letter or digit (so `jane.doe@acme-corp.com` is `jane doe acme
/// corp com`), drops tokens over 40 bytes, lower-cases and folds accents (`Zoë` → `zoe`).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The analyzer's tokens of `text`.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(t) = stream.next() {
        out.push(t.text.clone());
    }
    out
}

/// The token that starts a phone number's tokens, and the one that ends them.
pub const PHONE_START: &str = "^";
pub const PHONE_END: &str = "$";

/// The overlapping three-digit runs of `digits` (at least three ASCII digits), in order.
pub fn phone_trigrams(digits: &str) -> impl Iterator<Item = &str> {
    (0..digits.len().saturating_sub(2)).map(move |i| &digits[i..i + 3])
}

/// A phone number's tokens, at consecutive positions: [`PHONE_START`], each overlapping run
/// of three digits, [`PHONE_END`]. A run of four digits or more anywhere in the number is then
/// a phrase of its trigrams, and its last digits the same phrase ending in [`PHONE_END`]. A
/// thousand distinct terms at most, where indexing every tail of the number made up to a dozen
/// new terms per number (nearly half of a contact import's distinct terms).
pub fn phone_tokens(digits: &str) -> PreTokenizedString {
    let mut tokens = Vec::with_capacity(digits.len());
    let mut push = |text: &str, from: usize, to: usize| {
        tokens.push(Token {
            offset_from: from,
            offset_to: to,
            position: tokens.len(),
            text: text.to_string(),
            position_length: 1,
        });
    };
    push(PHONE_START, 0, 0);
    for (i, t) in phone_trigrams(digits).enumerate() {
        push(t, i, i + 3);
    }
    push(PHONE_END, digits.len(), digits.len());
    PreTokenizedString {
        text: digits.to_string(),
        tokens,
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub id: Field,
    pub kind: Field,
    pub kind_code: Field,
    pub title: Field,
    pub body: Field,
    pub email: Field,
    pub phone: Field,
    pub acl: Field,
    pub stage: Field,
    pub owner: Field,
    pub source: Field,
    pub tag: Field,
    pub pipeline: Field,
    pub updated: Field,
    pub amount: Field,
    pub url: Field,
    /// A record id's 128 bits (creation order for UUIDv7 ids), high and low halves.
    pub id_hi: Field,
    pub id_lo: Field,
    /// The folded title that list views sort by.
    pub sort_name: Field,
    /// Filter terms of list views (opaque to the index: the server chooses them).
    pub fields: Field,
    /// A deal's pipeline and stage ids and currency, and its amount as whole units and
    /// ten-thousandths.
    pub pipeline_id: Field,
    pub stage_id: Field,
    pub currency: Field,
    pub amount_int: Field,
    pub amount_frac: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        kind_code: b.add_u64_field("kind_code", FAST),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
        email: b.add_text_field("email", STRING),
        phone: b.add_text_field(
            "phone",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        ),
        acl: b.add_text_field("acl", STRING),
        stage: b.add_text_field("stage", STRING),
        owner: b.add_text_field("owner", STRING),
        source: b.add_text_field("source", STRING | STORED),
        tag: b.add_text_field("tag", STRING),
        pipeline: b.add_text_field("pipeline", STRING),
        updated: b.add_i64_field("updated", INDEXED | STORED | FAST),
        amount: b.add_f64_field("amount", STORED | FAST),
        url: b.add_text_field("url", STORED),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        sort_name: b.add_text_field("sort_name", STRING | FAST),
        fields: b.add_text_field("fields", STRING),
        pipeline_id: b.add_text_field("pipeline_id", STRING | FAST),
        stage_id: b.add_text_field("stage_id", STRING | FAST),
        currency: b.add_text_field("currency", STRING | FAST),
        amount_int: b.add_i64_field("amount_int", FAST),
        amount_frac: b.add_i64_field("amount_frac", FAST),
    };
    (b.build(), fields)
}
