//! The search box's query language, parsed without ever failing on odd input: words (the last one
//! is a prefix while the user is still typing it), `"quoted phrases"` (an unclosed quote runs to
//! the end), emails, phone numbers in any format, and field filters (`type:deal`, `stage:won`,
//! `owner:me`, `source:drive`, `tag:vip`, `pipeline:sales`). An unknown filter is an error that
//! names it. Control characters count as spaces; queries are capped in length and terms.

use crate::index::KINDS;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// The most words, phrases and filters in one query.
pub const MAX_CLAUSES: usize = 32;

/// A field a query can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterField {
    /// `type:deal` (singular or plural: `type:deals`; `type:document` for connector documents).
    Type,
    /// `stage:won`: a deal's stage by id or name, or its state (`open`, `won`, `lost`).
    Stage,
    /// `owner:me` or `owner:<user id>`.
    Owner,
    /// `source:<name>`: connector documents of one source.
    Source,
    /// `tag:<tag>`.
    Tag,
    /// `pipeline:<name or id>`.
    Pipeline,
}

impl FilterField {
    pub const ALL: [FilterField; 6] = [
        FilterField::Type,
        FilterField::Stage,
        FilterField::Owner,
        FilterField::Source,
        FilterField::Tag,
        FilterField::Pipeline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FilterField::Type => "type",
            FilterField::Stage => "stage",
            FilterField::Owner => "owner",
            FilterField::Source => "source",
            FilterField::Tag => "tag",
            FilterField::Pipeline => "pipeline",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

/// One part of a query; every clause must match (AND).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Clause {
    /// A word as typed. `prefix` is set on the last word when no space follows it.
    Word { text: String, prefix: bool },
    /// A quoted phrase: its words in order.
    Phrase { text: String, prefix: bool },
    /// An email address, matched whole (lower-cased).
    Email { text: String, prefix: bool },
    /// A phone number reduced to its digits.
    Phone { digits: String, prefix: bool },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    pub clauses: Vec<Clause>,
    pub filters: Vec<(FilterField, String)>,
}

impl ParsedQuery {
    /// True when nothing but filters (or nothing at all) was typed: the search lists recent items.
    pub fn is_browse(&self) -> bool {
        self.clauses.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is {len} characters long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("the query has {count} words, phrases and filters; the limit is {max}")]
    TooManyClauses { count: usize, max: usize },
    #[error("unknown filter `{name}:`; the filters are type:, stage:, owner:, source:, tag: and pipeline: (quote the text to search for it literally)")]
    UnknownFilter { name: String },
    #[error("unknown type `{value}` in `type:{value}`; the types are {}", KINDS.join(", "))]
    UnknownType { value: String },
}

impl QueryError {
    /// The part of the query the error is about, for error details.
    pub fn subject(&self) -> Option<&str> {
        match self {
            QueryError::UnknownFilter { name } => Some(name),
            QueryError::UnknownType { value } => Some(value),
            _ => None,
        }
    }
}

/// Parses a search-box query. Never panics; only the errors of [`QueryError`] are refused.
pub fn parse(input: &str) -> Result<ParsedQuery, QueryError> {
    let len = input.chars().count();
    if len > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong {
            len,
            max: MAX_QUERY_CHARS,
        });
    }
    let chars: Vec<char> = input
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = ParsedQuery::default();
    let mut i = 0;
    let n = chars.len();
    let mut count = 0usize;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        count += 1;
        if count > MAX_CLAUSES {
            return Err(QueryError::TooManyClauses {
                count: count_clauses(&chars),
                max: MAX_CLAUSES,
            });
        }
        if c == '"' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&c| c == '"')
                .map(|p| start + p);
            let (text, next, prefix) = match end {
                Some(e) => (collect(&chars[start..e]), e + 1, false),
                // An unclosed quote runs to the end and is still being typed.
                None => (collect(&chars[start..]), n, !ends_with_space(&chars)),
            };
            if !text.trim().is_empty() {
                out.clauses.push(Clause::Phrase { text, prefix });
            }
            i = next;
            continue;
        }
        if let Some((digits, next)) = phone_run(&chars, i) {
            let prefix = next >= n;
            out.clauses.push(Clause::Phone { digits, prefix });
            i = next;
            continue;
        }
        let end = chars[i..]
            .iter()
            .position(|c| c.is_whitespace())
            .map_or(n, |p| i + p);
        let word = collect(&chars[i..end]);
        let prefix = end >= n;
        if let Some((name, value)) = split_filter(&word) {
            let Some(field) = FilterField::parse(name) else {
                return Err(QueryError::UnknownFilter {
                    name: name.to_string(),
                });
            };
            // `stage:"closed won"`: a quoted value may hold spaces.
            let (value, next) = if value.starts_with('"') {
                // After the name, the colon and the opening quote.
                let from = i + name.chars().count() + 2;
                match chars[from..].iter().position(|&c| c == '"') {
                    Some(p) => (collect(&chars[from..from + p]), from + p + 1),
                    None => (collect(&chars[from..]), n),
                }
            } else {
                (value.to_string(), end)
            };
            let value = value.trim().to_lowercase();
            if !value.is_empty() {
                if field == FilterField::Type {
                    let kind = singular_kind(&value).ok_or_else(|| QueryError::UnknownType {
                        value: value.clone(),
                    })?;
                    out.filters.push((field, kind.to_string()));
                } else {
                    out.filters.push((field, value));
                }
            }
            i = next;
            continue;
        }
        if is_email(&word) {
            out.clauses.push(Clause::Email {
                text: word.to_lowercase(),
                prefix,
            });
        } else {
            out.clauses.push(Clause::Word { text: word, prefix });
        }
        i = end;
    }
    Ok(out)
}

fn collect(chars: &[char]) -> String {
    chars.iter().collect()
}

fn ends_with_space(chars: &[char]) -> bool {
    chars.last().is_some_and(|c| c.is_whitespace())
}

fn count_clauses(chars: &[char]) -> usize {
    collect(chars).split_whitespace().count()
}

/// `name:value` where `name` is letters or `_` and the value is not `//…` (a URL).
fn split_filter(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once(':')?;
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
        || value.starts_with("//")
    {
        return None;
    }
    Some((name, value))
}

fn is_email(word: &str) -> bool {
    match word.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && local.len() <= 64
        }
        None => false,
    }
}

/// A phone number starting at `i`: digits with `+ ( ) - . /` and single spaces between them,
/// 7 to 15 digits in all. Returns its digits and the index after it.
fn phone_run(chars: &[char], i: usize) -> Option<(String, usize)> {
    let first = chars[i];
    if !(first.is_ascii_digit() || first == '+' || first == '(') {
        return None;
    }
    let mut digits = String::new();
    let mut end = i;
    let mut j = i;
    while j < chars.len() {
        let c = chars[j];
        if c.is_ascii_digit() {
            digits.push(c);
            end = j + 1;
        } else if matches!(c, '+' | '(' | ')' | '-' | '.' | '/') {
            if c == ')' {
                end = j + 1;
            }
        } else if c == ' ' {
            // A space continues the number only when more of it follows.
            if !chars
                .get(j + 1)
                .is_some_and(|n| n.is_ascii_digit() || *n == '(')
            {
                break;
            }
        } else {
            // Letters glued to digits (`abc123`, `v2.0-beta`) are words, not numbers.
            return None;
        }
        j += 1;
    }
    // A number must end at a word boundary.
    if chars.get(end).is_some_and(|c| !c.is_whitespace()) {
        return None;
    }
    if (7..=15).contains(&digits.len()) {
        Some((digits, end))
    } else {
        None
    }
}

/// Typos forgiven in a word of `chars` characters: none up to 4, one up to 8, two from 9.
pub fn typo_budget(chars: usize) -> u8 {
    match chars {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// The stored kind for a `type:` value (`deal`, `deals`, `form_submissions`…).
pub fn singular_kind(value: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| {
        value == *k
            || value == format!("{k}s")
            || (k.ends_with('y') && value == format!("{}ies", &k[..k.len() - 1]))
            || (*k == "field" && value == "custom_fields")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &ParsedQuery) -> Vec<&Clause> {
        q.clauses.iter().collect()
    }

    #[test]
    fn last_word_is_a_prefix_only_while_typed() {
        let q = parse("acme cor").unwrap();
        assert_eq!(
            words(&q),
            vec![
                &Clause::Word {
                    text: "acme".into(),
                    prefix: false
                },
                &Clause::Word {
                    text: "cor".into(),
                    prefix: true
                }
            ]
        );
        let q = parse("acme cor ").unwrap();
        assert!(matches!(q.clauses[1], Clause::Word { prefix: false, .. }));
    }

    #[test]
    fn phrases_emails_phones_and_filters() {
        let q = parse(r#""big deal" jane@Acme.com (555) 123-4567 type:deals stage:won"#).unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause::Phrase {
                    text: "big deal".into(),
                    prefix: false
                },
                Clause::Email {
                    text: "jane@acme.com".into(),
                    prefix: false
                },
                Clause::Phone {
                    digits: "5551234567".into(),
                    prefix: false
                },
            ]
        );
        assert_eq!(
            q.filters,
            vec![
                (FilterField::Type, "deal".into()),
                (FilterField::Stage, "won".into())
            ]
        );
    }

    #[test]
    fn quoted_filter_values_and_plural_types() {
        let q = parse(r#"stage:"Closed Won" type:activities"#).unwrap();
        assert_eq!(
            q.filters,
            vec![
                (FilterField::Stage, "closed won".into()),
                (FilterField::Type, "activity".into())
            ]
        );
    }

    #[test]
    fn unknown_filters_and_types_are_named() {
        let e = parse("colour:red").unwrap_err();
        assert!(e.to_string().contains("`colour:`"), "{e}");
        let e = parse("type:spaceship").unwrap_err();
        assert!(e.to_string().contains("spaceship"), "{e}");
    }

    #[test]
    fn odd_input_is_safe() {
        for q in [
            "\"",
            "\"\"",
            "\"unclosed phrase",
            ":",
            "::",
            "type:",
            "-",
            "AND OR NOT",
            "a\u{0}b\u{7}c",
            "+",
            "(((",
            "@",
            "a@",
            "@b",
            "12:30",
            "https://acme.com/x",
            "é\u{301}",
        ] {
            parse(q).unwrap();
        }
        assert!(matches!(
            parse(&"x".repeat(10_000)),
            Err(QueryError::TooLong { .. })
        ));
        assert!(matches!(
            parse(&"a ".repeat(40)),
            Err(QueryError::TooManyClauses { .. })
        ));
    }

    #[test]
    fn short_digit_runs_and_versions_are_words() {
        let q = parse("2024 v2.0-beta 555-12").unwrap();
        assert!(q.clauses.iter().all(|c| matches!(c, Clause::Word { .. })));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_query_like_text(s in "[a-z\": @.+()0-9-]{0,60}") {
            let _ = parse(&s);
        }
    }
}
