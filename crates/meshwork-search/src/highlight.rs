//! Snippets: the stored text re-tokenised with the index's analyzer, a window around the first
//! token a query word matches (exactly, as a prefix, or within its typo budget), HTML-escaped,
//! with every matching token wrapped in `<mark>`. Only items the searcher may open get here.

use crate::query::{typo_budget, Clause, ParsedQuery};
use crate::schema::tokens;
use tantivy::tokenizer::TextAnalyzer;

#[derive(Debug, Default)]
pub struct Matcher {
    words: Vec<(String, u8, bool)>,
}

impl Matcher {
    pub fn new(q: &ParsedQuery, analyzer: &mut TextAnalyzer) -> Self {
        let mut words = Vec::new();
        for c in &q.clauses {
            let (text, prefix) = match c {
                Clause::Word { text, prefix }
                | Clause::Phrase { text, prefix }
                | Clause::Email { text, prefix } => (text.as_str(), *prefix),
                Clause::Phone { digits, prefix } => (digits.as_str(), *prefix),
            };
            let toks = tokens(analyzer, text);
            let last = toks.len().saturating_sub(1);
            let single = toks.len() == 1;
            for (i, t) in toks.into_iter().enumerate() {
                // Typos are forgiven on single words only, as in the query.
                let budget = if single && !matches!(c, Clause::Phrase { .. }) {
                    typo_budget(t.chars().count())
                } else {
                    0
                };
                words.push((t, budget, prefix && i == last));
            }
        }
        Self { words }
    }

    pub fn matches(&self, token: &str) -> bool {
        self.words.iter().any(|(w, budget, prefix)| {
            if token == w || (*prefix && token.starts_with(w.as_str())) {
                return true;
            }
            if *budget == 0 {
                return false;
            }
            let d = *budget as usize;
            if strsim::osa_distance(token, w) <= d {
                return true;
            }
            *prefix && {
                let n = w.chars().count();
                let head: String = token.chars().take(n).collect();
                strsim::osa_distance(&head, w) <= d
            }
        })
    }
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The highlighted window of `text` (at most about `max_bytes` long), and whether any token
/// matched. Without a match the window is the start of the text.
pub fn snippet(
    analyzer: &mut TextAnalyzer,
    m: &Matcher,
    text: &str,
    max_bytes: usize,
) -> (String, bool) {
    let mut marks = Vec::new();
    {
        let mut stream = analyzer.token_stream(text);
        while let Some(t) = stream.next() {
            if m.matches(&t.text) {
                marks.push((t.offset_from, t.offset_to));
            }
        }
    }
    let start = match marks.first() {
        Some(&(from, _)) if from > max_bytes / 3 => {
            let s = floor_boundary(text, from - max_bytes / 3);
            // Start at a word boundary when one is near.
            text[s..from]
                .find(char::is_whitespace)
                .map_or(s, |p| s + p + 1)
        }
        _ => 0,
    };
    let end = floor_boundary(text, (start + max_bytes).min(text.len()));
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for &(from, to) in &marks {
        if from < at || to > end {
            continue;
        }
        escape(&mut out, &text[at..from]);
        out.push_str("<mark>");
        escape(&mut out, &text[from..to]);
        out.push_str("</mark>");
        at = to;
    }
    escape(&mut out, &text[at..end]);
    if end < text.len() {
        out.push('…');
    }
    (out, !marks.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;
    use crate::schema::analyzer;

    #[test]
    fn marks_exact_prefix_and_typo_matches_and_escapes_html() {
        let mut a = analyzer();
        let m = Matcher::new(&parse("renewel <b> acm").unwrap(), &mut a);
        let (s, hit) = snippet(&mut a, &m, "The <b>renewal</b> of Acme-Corp is due", 200);
        assert!(hit);
        assert_eq!(
            s,
            "The &lt;<mark>b</mark>&gt;<mark>renewal</mark>&lt;/<mark>b</mark>&gt; of <mark>Acme</mark>-Corp is due"
        );
    }

    #[test]
    fn windows_around_the_first_match_on_char_boundaries() {
        let mut a = analyzer();
        let m = Matcher::new(&parse("needle ").unwrap(), &mut a);
        let text = format!("{} needle {}", "é".repeat(300), "ü".repeat(300));
        let (s, hit) = snippet(&mut a, &m, &text, 100);
        assert!(hit);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("<mark>needle</mark>"));
    }
}
