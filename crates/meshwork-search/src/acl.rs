//! Access at query time (DESIGN.md decision 5). Every indexed item carries the principals allowed
//! to read it; a search carries the searcher's principal set, and only items sharing a principal
//! with it can match, be counted or be highlighted. An item with no principals matches nobody.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;

/// The principal of CRM records: held by workspace members whose role may read the CRM.
pub const CRM: &str = "crm";
/// Every member of the workspace (a source's "anyone in the organisation").
pub const EVERYONE: &str = "everyone";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A source user, by the blind index of its source and id (never the id itself).
pub fn user_principal(hash: &[u8; 32]) -> String {
    format!("u:{}", hex(hash))
}

/// A source group, by the blind index of its source and id.
pub fn group_principal(hash: &[u8; 32]) -> String {
    format!("g:{}", hex(hash))
}

/// The principals a search runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    principals: BTreeSet<String>,
}

impl Access {
    pub fn new(principals: impl IntoIterator<Item = String>) -> Self {
        Self {
            principals: principals.into_iter().collect(),
        }
    }

    pub fn principals(&self) -> impl Iterator<Item = &str> {
        self.principals.iter().map(String::as_str)
    }

    pub fn contains(&self, principal: &str) -> bool {
        self.principals.contains(principal)
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// Expands `start` with every group that contains one of its members, transitively (nested
/// groups, cycles included). `parents` answers, for a set of principals, the groups that list
/// any of them as a direct member; it is called once per level of nesting.
pub async fn principal_closure<F, Fut, E>(
    start: impl IntoIterator<Item = String>,
    mut parents: F,
) -> Result<BTreeSet<String>, E>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<String>, E>>,
{
    let mut seen: BTreeSet<String> = start.into_iter().collect();
    let mut frontier: Vec<String> = seen.iter().cloned().collect();
    while !frontier.is_empty() {
        let next = parents(std::mem::take(&mut frontier)).await?;
        for g in next {
            if seen.insert(g.clone()) {
                frontier.push(g);
            }
        }
    }
    Ok(seen)
}
