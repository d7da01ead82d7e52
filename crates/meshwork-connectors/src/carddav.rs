//! The CardDAV contacts connector (RFC 6352): an account's address books, read-only, whose cards
//! become CRM contacts (the sync service in `meshwork_app::connectors` writes them). Requests go
//! through the [`crate::HttpTransport`] the process plugged in.
//!
//! The settings' `url` may be the server, the account's home or one address book: a URL that is
//! not an address book is searched for one the way clients do it (the account's
//! `current-user-principal`, its `addressbook-home-set`, then the home's address books). Each
//! sync lists every card's href and ETag with a `PROPFIND` (`Depth: 1`) per book; only cards
//! whose ETag changed are fetched, in `addressbook-multiget` reports of [`MULTIGET`] hrefs.
//! Nothing is ever written to the server.
//!
//! Answers are read up to [`MAX_RESPONSE`] bytes and parsed with `roxmltree` (no entities, no
//! external references); [`parse_multistatus`] is the fuzzed parser of what a server answers.

use crate::{ConnectorError, HttpError, HttpRequest, HttpTransport, ItemError, Result, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

pub const SCOPES: &[Scope] = &[
    Scope {
        name: "addressbooks:read",
        description: "Find the account's address books (PROPFIND)",
    },
    Scope {
        name: "contacts:read",
        description: "Read the cards of those address books (PROPFIND and REPORT); nothing is ever written back",
    },
];

/// The most bytes read from one answer.
pub const MAX_RESPONSE: usize = 64 << 20;
/// Cards asked for in one `addressbook-multiget`.
pub const MULTIGET: usize = 200;

const DAV: &str = "DAV:";
const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";

/// A CardDAV account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDavSettings {
    /// `http://` or `https://`: the server, the account's home, or one address book.
    pub url: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for CardDavSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDavSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"********")
            .finish()
    }
}

impl CardDavSettings {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let url = Url::parse(&self.url)
            .map_err(|e| format!("field `url`: {:?} is not a URL ({e})", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "field `url`: {:?} is not an http:// or https:// address",
                self.url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "field `url`: put the account in `user` and `password`, not in the address".into(),
            );
        }
        if self.user.is_empty() || self.user.chars().any(|c| c.is_control() || c == ':') {
            return Err(format!("field `user`: {:?} is not a login", self.user));
        }
        Ok(())
    }
}

/// A card in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCard {
    /// The address book it is in.
    pub book: Url,
    /// Its path on the server (its id at the source).
    pub href: String,
    /// Changes whenever the card does.
    pub etag: String,
}

/// Every card of the account, as far as it could be listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardListing {
    pub cards: Vec<ListedCard>,
    /// What could not be listed (each named).
    pub problems: Vec<String>,
    /// Whether every address book was listed: only a complete listing removes contacts whose
    /// card is gone.
    pub complete: bool,
}

/// A card read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub href: String,
    pub etag: String,
    /// The vCard text.
    pub vcard: String,
}

/// One `response` of a WebDAV multistatus, with the properties this connector reads (from
/// `propstat`s whose status is 2xx).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DavResponse {
    pub href: String,
    /// The response's own status, when it has one (a multiget's missing card: 404).
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub collection: bool,
    pub addressbook: bool,
    pub principal: Option<String>,
    pub home: Option<String>,
    pub address_data: Option<String>,
}

fn status_code(line: &str) -> Option<u16> {
    // "HTTP/1.1 200 OK"
    line.split_whitespace().nth(1)?.parse().ok()
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((ns, name)))
}

fn href_in(n: roxmltree::Node<'_, '_>) -> Option<String> {
    child(n, DAV, "href")
        .and_then(|h| h.text())
        .map(|t| t.trim().to_string())
}

/// Parses a WebDAV `multistatus` answer.
pub fn parse_multistatus(xml: &str) -> Result<Vec<DavResponse>> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..Default::default()
        },
    )
    .map_err(|e| ConnectorError::Protocol(format!("not XML: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name((DAV, "multistatus")) {
        return Err(ConnectorError::Protocol(format!(
            "expected a WebDAV multistatus, got <{}>",
            root.tag_name().name()
        )));
    }
    let mut out = Vec::new();
    for r in root
        .children()
        .filter(|c| c.has_tag_name((DAV, "response")))
    {
        let Some(href) = href_in(r) else {
            return Err(ConnectorError::Protocol(
                "a multistatus response without an href".into(),
            ));
        };
        let mut resp = DavResponse {
            href,
            status: child(r, DAV, "status")
                .and_then(|s| s.text())
                .and_then(status_code),
            ..Default::default()
        };
        for ps in r.children().filter(|c| c.has_tag_name((DAV, "propstat"))) {
            let ok = child(ps, DAV, "status")
                .and_then(|s| s.text())
                .and_then(status_code)
                .is_some_and(|s| (200..300).contains(&s));
            let Some(prop) = child(ps, DAV, "prop") else {
                continue;
            };
            if !ok {
                continue;
            }
            for p in prop.children().filter(|c| c.is_element()) {
                let tag = p.tag_name();
                match (tag.namespace().unwrap_or(""), tag.name()) {
                    (DAV, "getetag") => resp.etag = p.text().map(|t| t.trim().to_string()),
                    (DAV, "resourcetype") => {
                        resp.collection = child(p, DAV, "collection").is_some();
                        resp.addressbook = child(p, CARDDAV, "addressbook").is_some();
                    }
                    (DAV, "current-user-principal") => resp.principal = href_in(p),
                    (CARDDAV, "addressbook-home-set") => resp.home = href_in(p),
                    (CARDDAV, "address-data") => {
                        resp.address_data = Some(p.text().unwrap_or("").to_string())
                    }
                    _ => {}
                }
            }
        }
        out.push(resp);
    }
    Ok(out)
}

/// The path of an href (which may be a whole URL), percent-encoding as the server wrote it.
fn path_of(href: &str) -> String {
    match Url::parse(href) {
        Ok(u) => u.path().to_string(),
        Err(_) => href.to_string(),
    }
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A read-only client of one CardDAV account.
#[derive(Debug)]
pub struct CardDav {
    settings: CardDavSettings,
    http: Option<Arc<dyn HttpTransport>>,
}

impl CardDav {
    pub fn new(settings: CardDavSettings, http: Option<Arc<dyn HttpTransport>>) -> Self {
        Self { settings, http }
    }

    fn base(&self) -> Result<Url> {
        Url::parse(&self.settings.url)
            .map_err(|e| ConnectorError::Settings(format!("field `url`: {e}")))
    }

    /// Sends a WebDAV request and reads its multistatus answer.
    async fn dav(
        &self,
        method: &str,
        url: &Url,
        depth: &str,
        body: String,
    ) -> Result<Vec<DavResponse>> {
        let Some(http) = &self.http else {
            return Err(ConnectorError::Settings(
                "this process has no HTTP client for connectors".into(),
            ));
        };
        let answer = http
            .send(HttpRequest {
                method,
                url,
                headers: vec![
                    ("Depth", depth.to_string()),
                    ("Content-Type", "application/xml; charset=utf-8".into()),
                ],
                basic_auth: Some((&self.settings.user, &self.settings.password)),
                body,
                max_answer: MAX_RESPONSE,
            })
            .await
            .map_err(|e| match e {
                HttpError::Unreachable(why) => ConnectorError::Unreachable(format!("{url}: {why}")),
                HttpError::Refused(why) => ConnectorError::Settings(why),
                HttpError::TooLarge(_) => ConnectorError::Protocol(format!(
                    "{url}: the answer is larger than {} MiB",
                    MAX_RESPONSE >> 20
                )),
            })?;
        match answer.status {
            207 => {}
            401 => {
                return Err(ConnectorError::Credentials(format!(
                    "{url} refused user {:?} (401)",
                    self.settings.user
                )))
            }
            403 => {
                return Err(ConnectorError::Credentials(format!(
                    "{url}: user {:?} may not read it (403)",
                    self.settings.user
                )))
            }
            404 => {
                return Err(ConnectorError::Settings(format!(
                    "{url} does not exist (404)"
                )))
            }
            s @ (429 | 500..=599) => {
                return Err(ConnectorError::Unreachable(format!("{url} answered {s}")))
            }
            s => {
                return Err(ConnectorError::Protocol(format!(
                    "{url} answered {s} to {method}; is it a CardDAV server?"
                )))
            }
        }
        let text = String::from_utf8(answer.body)
            .map_err(|_| ConnectorError::Protocol(format!("{url}: the answer is not UTF-8")))?;
        parse_multistatus(&text)
    }

    async fn propfind(&self, url: &Url, depth: &str, props: &str) -> Result<Vec<DavResponse>> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:c="{CARDDAV}"><d:prop>{props}</d:prop></d:propfind>"#
        );
        self.dav("PROPFIND", url, depth, body).await
    }

    fn join(&self, base: &Url, href: &str) -> Result<Url> {
        base.join(href).map_err(|e| {
            ConnectorError::Protocol(format!("the server named {href:?}, not a path ({e})"))
        })
    }

    /// The account's address books.
    pub async fn books(&self) -> Result<Vec<Url>> {
        let base = self.base()?;
        let first = self
            .propfind(
                &base,
                "0",
                "<d:resourcetype/><d:current-user-principal/><c:addressbook-home-set/>",
            )
            .await?;
        let me = first.into_iter().next().unwrap_or_default();
        if me.addressbook {
            return Ok(vec![base]);
        }
        let home = match (&me.home, &me.principal) {
            (Some(home), _) => self.join(&base, home)?,
            (None, Some(principal)) => {
                let principal = self.join(&base, principal)?;
                let found = self
                    .propfind(&principal, "0", "<c:addressbook-home-set/>")
                    .await?;
                match found.into_iter().find_map(|r| r.home) {
                    Some(home) => self.join(&principal, &home)?,
                    None => principal,
                }
            }
            (None, None) => base.clone(),
        };
        let mut books: Vec<Url> = Vec::new();
        for r in self.propfind(&home, "1", "<d:resourcetype/>").await? {
            if r.addressbook {
                let url = self.join(&home, &r.href)?;
                if !books.contains(&url) {
                    books.push(url);
                }
            }
        }
        if books.is_empty() {
            return Err(ConnectorError::Settings(format!(
                "field `url`: no address book of user {:?} found at {home}",
                self.settings.user
            )));
        }
        Ok(books)
    }

    /// Connects, finds the address books and counts their cards.
    pub async fn check(&self) -> Result<String> {
        let listing = self.list().await?;
        let books = listing
            .cards
            .iter()
            .map(|c| c.book.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut said = format!(
            "connected as {}: {} card{} in {} address book{}",
            self.settings.user,
            listing.cards.len(),
            if listing.cards.len() == 1 { "" } else { "s" },
            books,
            if books == 1 { "" } else { "s" }
        );
        if let Some(p) = listing.problems.first() {
            said.push_str(&format!("; {p}"));
        }
        Ok(said)
    }

    /// Every card's href and ETag, book by book; a book that cannot be listed is a problem and
    /// makes the listing incomplete.
    pub async fn list(&self) -> Result<CardListing> {
        let books = self.books().await?;
        let mut out = CardListing {
            complete: true,
            ..Default::default()
        };
        for book in books {
            match self
                .propfind(&book, "1", "<d:getetag/><d:resourcetype/>")
                .await
            {
                Ok(items) => {
                    for r in items {
                        let href = path_of(&r.href);
                        if r.collection || same_path(&href, book.path()) {
                            continue;
                        }
                        let Some(etag) = r.etag else {
                            out.problems.push(format!(
                                "card {href}: the server gave no ETag; it is skipped"
                            ));
                            out.complete = false;
                            continue;
                        };
                        out.cards.push(ListedCard {
                            book: book.clone(),
                            href,
                            etag,
                        });
                    }
                }
                Err(e @ ConnectorError::Credentials(_)) => return Err(e),
                Err(e) => {
                    out.problems.push(format!("address book {book}: {e}"));
                    out.complete = false;
                }
            }
        }
        Ok(out)
    }

    /// The cards at `hrefs` of `book`; one the server no longer has is left out, one it cannot
    /// give is an [`ItemError`].
    pub async fn fetch(
        &self,
        book: &Url,
        hrefs: &[String],
    ) -> Result<Vec<std::result::Result<Card, ItemError>>> {
        let mut out = Vec::with_capacity(hrefs.len());
        for chunk in hrefs.chunks(MULTIGET) {
            let mut body = format!(
                r#"<?xml version="1.0" encoding="utf-8"?><c:addressbook-multiget xmlns:d="DAV:" xmlns:c="{CARDDAV}"><d:prop><d:getetag/><c:address-data/></d:prop>"#
            );
            for h in chunk {
                body.push_str("<d:href>");
                body.push_str(&xml_escape(h));
                body.push_str("</d:href>");
            }
            body.push_str("</c:addressbook-multiget>");
            let answers: BTreeMap<String, DavResponse> = self
                .dav("REPORT", book, "1", body)
                .await?
                .into_iter()
                .map(|r| (path_of(&r.href), r))
                .collect();
            for h in chunk {
                let Some(r) = answers.get(h.as_str()) else {
                    out.push(Err(ItemError {
                        id: h.clone(),
                        error: "the server did not answer for this card".into(),
                    }));
                    continue;
                };
                if r.status == Some(404) {
                    continue; // deleted since the listing
                }
                match (&r.address_data, &r.etag) {
                    (Some(v), Some(etag)) => out.push(Ok(Card {
                        href: h.clone(),
                        etag: etag.clone(),
                        vcard: v.clone(),
                    })),
                    _ => out.push(Err(ItemError {
                        id: h.clone(),
                        error: match r.status {
                            Some(s) => format!("the server answered {s} for this card"),
                            None => "the server gave no card data".into(),
                        },
                    })),
                }
            }
        }
        Ok(out)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multistatus_is_read_with_its_properties_and_statuses() {
        let xml = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><response><href>/alice/contacts/zz.vcf</href><status>HTTP/1.1 404 Not Found</status></response><response><href>http://h/alice/contacts/a1.vcf</href><propstat><prop><getetag>"e1"</getetag><CR:address-data>BEGIN:VCARD
FN:Ann &amp; Co
END:VCARD
</CR:address-data></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><CR:addressbook-home-set/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response><response><href>/alice/contacts/</href><propstat><prop><resourcetype><CR:addressbook /><collection /></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        let r = parse_multistatus(xml).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].status, Some(404));
        assert_eq!(path_of(&r[1].href), "/alice/contacts/a1.vcf");
        assert_eq!(r[1].etag.as_deref(), Some("\"e1\""));
        assert!(r[1]
            .address_data
            .as_deref()
            .unwrap()
            .contains("FN:Ann & Co"));
        assert_eq!(r[1].home, None);
        assert!(r[2].addressbook && r[2].collection);
    }

    #[test]
    fn what_is_not_a_multistatus_is_refused_by_name() {
        for bad in [
            "",
            "<html/>",
            "<multistatus xmlns=\"DAV:\"><response/></multistatus>",
        ] {
            assert!(
                matches!(parse_multistatus(bad), Err(ConnectorError::Protocol(_))),
                "{bad}"
            );
        }
        let dtd =
            r#"<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x "y">]><multistatus xmlns="DAV:"/>"#;
        assert!(
            parse_multistatus(dtd).is_err(),
            "document type declarations are refused"
        );
    }

    #[test]
    fn settings_are_checked_naming_the_field() {
        let s = |url: &str, user: &str| CardDavSettings {
            url: url.into(),
            user: user.into(),
            password: "pw".into(),
        };
        assert!(s("https://dav.example.com/", "ann").validate().is_ok());
        assert!(s("ftp://x/", "ann")
            .validate()
            .unwrap_err()
            .contains("`url`"));
        assert!(s("https://a:b@x/", "ann")
            .validate()
            .unwrap_err()
            .contains("`url`"));
        assert!(s("https://x/", "")
            .validate()
            .unwrap_err()
            .contains("`user`"));
        assert!(!format!("{:?}", s("https://x/", "ann")).contains("pw"));
    }
}
