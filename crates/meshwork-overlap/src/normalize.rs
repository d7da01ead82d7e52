//! Normalisation of the identifiers PartnerMesh matches on: e-mail addresses, company domains and
//! phone numbers.
//!
//! Two records name the same thing exactly when their normalised forms are equal byte for byte, so
//! every rule here decides what counts as "the same": a change to a rule changes which records
//! match, and must be treated like a format change (`docs/overlap-protocol.md`).
//!
//! Every function is idempotent: normalising a normalised value gives it back unchanged.
//!
//! | function | accepts | returns |
//! | --- | --- | --- |
//! | [`email`] | `" Jane.Doe+crm@GoogleMail.com "` | `janedoe@gmail.com` |
//! | [`company_domain`] | `https://www.Acme.co.uk/path`, `jane@sales.acme.co.uk`, `acme.co.uk.` | `acme.co.uk` |
//! | [`phone`] | `"(415) 555-2671"` with region `US` | `+14155552671` |

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// Longest input accepted by [`email`], in bytes (RFC 5321 allows 254 in practice; leave room
/// for surrounding whitespace).
pub const MAX_EMAIL_INPUT: usize = 512;
/// Longest input accepted by [`company_domain`] (a URL), in bytes.
pub const MAX_DOMAIN_INPUT: usize = 2048;
/// Longest input accepted by [`phone`], in bytes.
pub const MAX_PHONE_INPUT: usize = 64;

const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Why a value could not be normalised.
///
/// The messages name the rule that failed, never the whole input (inputs are personal data and
/// errors end up in logs); they may name a domain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NormalizeError {
    /// Nothing left after trimming whitespace.
    #[error("the value is empty")]
    Empty,
    /// The input is longer than the limit for its kind.
    #[error("the value is too long ({len} bytes; at most {max})")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An e-mail address without an `@`.
    #[error("an e-mail address needs an '@'")]
    MissingAt,
    /// An e-mail address with more than one `@` (quoted local parts are not supported).
    #[error("an e-mail address may contain only one '@'")]
    MultipleAt,
    /// The part before the `@` is missing or not acceptable.
    #[error("invalid e-mail local part: {0}")]
    InvalidLocalPart(&'static str),
    /// The domain is not a valid host name.
    #[error("invalid domain: {0}")]
    InvalidDomain(Cow<'static, str>),
    /// The host is an IP address, which names no company.
    #[error("an IP address is not a domain")]
    IpAddress,
    /// The domain's public suffix is not in the public suffix list.
    #[error("'{0}' does not end in a known public suffix")]
    UnknownSuffix(String),
    /// The domain is itself a public suffix (e.g. `co.uk`), so it names no single organisation.
    #[error("'{0}' is a public suffix, not a registrable domain")]
    NotRegistrable(String),
    /// A free-mail provider's domain: it names no company, so company matching rejects it.
    #[error("'{0}' is a free-mail provider, not a company domain")]
    FreeMail(String),
    /// The default region is not an ISO 3166-1 alpha-2 code that libphonenumber knows.
    #[error("unknown phone region '{0}' (expected an ISO 3166-1 alpha-2 code such as US or GB)")]
    InvalidRegion(String),
    /// The phone number could not be parsed or is not a valid number.
    #[error("invalid phone number: {0}")]
    InvalidPhone(Cow<'static, str>),
}

/// A normalised identifier, ready to be turned into a match token or a PSI item.
///
/// The variants hold *normalised* values: build them with [`Identifier::email`],
/// [`Identifier::company_domain`] and [`Identifier::phone`], which normalise. Constructing a
/// variant directly from a raw value is allowed (it is a plain enum) but then matching is only
/// as good as the caller's normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// A contact's e-mail address, normalised by [`email`].
    Email(String),
    /// An account's (company's) registrable domain, normalised by [`company_domain`].
    Domain(String),
    /// A contact's phone number in E.164, normalised by [`phone`].
    Phone(String),
}

impl Identifier {
    /// Normalises an e-mail address ([`email`]).
    pub fn email(raw: &str) -> Result<Self, NormalizeError> {
        email(raw).map(Identifier::Email)
    }

    /// Normalises a company URL, e-mail address or domain ([`company_domain`]).
    pub fn company_domain(raw: &str) -> Result<Self, NormalizeError> {
        company_domain(raw).map(Identifier::Domain)
    }

    /// Normalises a phone number ([`phone`]).
    pub fn phone(raw: &str, default_region: &str) -> Result<Self, NormalizeError> {
        phone(raw, default_region).map(Identifier::Phone)
    }

    /// The kind tag that frames this identifier in tokens and PSI items.
    ///
    /// The tags are `email`, `domain` and `phone`: ASCII, free of `0x00`, and prefix-free (no tag
    /// is a prefix of another), so `tag ‖ 0x00 ‖ value` is an injective encoding of
    /// `(kind, value)` whatever bytes the value holds. They are part of the match format: never
    /// change one.
    pub fn kind_tag(&self) -> &'static [u8] {
        match self {
            Identifier::Email(_) => b"email",
            Identifier::Domain(_) => b"domain",
            Identifier::Phone(_) => b"phone",
        }
    }

    /// The normalised value.
    pub fn value(&self) -> &str {
        match self {
            Identifier::Email(v) | Identifier::Domain(v) | Identifier::Phone(v) => v,
        }
    }

    /// The framed encoding `kind_tag ‖ 0x00 ‖ value` that tokens and PSI items are computed over.
    pub fn framed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.kind_tag().len() + 1 + self.value().len());
        self.write_framed(&mut out);
        out
    }

    /// Appends the framed encoding (see [`Identifier::framed`]) to `out`.
    pub fn write_framed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.kind_tag());
        out.push(0x00);
        out.extend_from_slice(self.value().as_bytes());
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Identifier::Email(_) => "email",
            Identifier::Domain(_) => "domain",
            Identifier::Phone(_) => "phone",
        };
        write!(f, "{kind}:{}", self.value())
    }
}

fn trimmed(s: &str, max: usize) -> Result<&str, NormalizeError> {
    if s.len() > max {
        return Err(NormalizeError::TooLong { len: s.len(), max });
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(NormalizeError::Empty);
    }
    Ok(t)
}

/// Normalises an e-mail address.
///
/// - Trims surrounding whitespace and lowercases the whole address (local parts are treated as
///   case-insensitive, as every large provider does).
/// - Converts the domain to ASCII with IDNA (UTS #46, so `bücher.de` becomes
///   `xn--bcher-kva.de`) and drops one trailing dot.
/// - Rejects addresses without exactly one `@`, empty or over-long parts, whitespace, control
///   characters, the specials `"(),:;<>[\]`, leading, trailing or doubled dots in the local part,
///   single-label domains and IP-address domains.
/// - For `gmail.com` and `googlemail.com` (the same mailboxes), drops the dots and any `+tag`
///   from the local part and maps the domain to `gmail.com`. For every other domain the local
///   part is kept as is, `+tag` included (whether a tag is significant is up to each provider).
///
/// Non-ASCII local parts are accepted and lowercased but not Unicode-normalised (NFC): an NFC
/// and an NFD spelling of the same address do not match.
pub fn email(s: &str) -> Result<String, NormalizeError> {
    let s = trimmed(s, MAX_EMAIL_INPUT)?.to_lowercase();
    let (local, domain) = match s.split_once('@') {
        None => return Err(NormalizeError::MissingAt),
        Some((_, rest)) if rest.contains('@') => return Err(NormalizeError::MultipleAt),
        Some(parts) => parts,
    };
    let domain = ascii_domain(domain)?;
    let mut local = local.to_owned();
    check_local_part(&local)?;
    let domain = if domain == "gmail.com" || domain == "googlemail.com" {
        if let Some(plus) = local.find('+') {
            local.truncate(plus);
        }
        local.retain(|c| c != '.');
        if local.is_empty() {
            return Err(NormalizeError::InvalidLocalPart(
                "nothing left of a Gmail address once dots and +tag are removed",
            ));
        }
        "gmail.com".to_owned()
    } else {
        domain
    };
    Ok(format!("{local}@{domain}"))
}

fn check_local_part(local: &str) -> Result<(), NormalizeError> {
    if local.is_empty() {
        return Err(NormalizeError::InvalidLocalPart("empty"));
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(NormalizeError::InvalidLocalPart("longer than 64 bytes"));
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NormalizeError::InvalidLocalPart(
            "contains whitespace or a control character",
        ));
    }
    if local.chars().any(|c| "\"(),:;<>[\\]".contains(c)) {
        return Err(NormalizeError::InvalidLocalPart(
            "contains one of the characters \"(),:;<>[\\] (quoted local parts are not supported)",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(NormalizeError::InvalidLocalPart(
            "starts or ends with a dot, or has two dots in a row",
        ));
    }
    Ok(())
}

/// Converts a host name to its validated, lowercase ASCII (IDNA) form without a trailing dot.
fn ascii_domain(domain: &str) -> Result<String, NormalizeError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(NormalizeError::InvalidDomain("empty".into()));
    }
    if domain.starts_with('[') {
        return Err(NormalizeError::IpAddress);
    }
    // Bound the work IDNA does on hostile input; a valid name is far shorter once encoded, and a
    // Unicode label is never longer than its Punycode form.
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(NormalizeError::InvalidDomain(
            "longer than 253 bytes".into(),
        ));
    }
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::URL)
        .map_err(|_| NormalizeError::InvalidDomain("not a valid internationalised name".into()))?;
    check_host(&ascii)?;
    Ok(ascii.into_owned())
}

/// Checks the letters-digits-hyphen rules on an ASCII host name.
fn check_host(host: &str) -> Result<(), NormalizeError> {
    if host.is_empty() {
        return Err(NormalizeError::InvalidDomain("empty".into()));
    }
    if host.len() > MAX_DOMAIN_LEN {
        return Err(NormalizeError::InvalidDomain(
            "longer than 253 bytes".into(),
        ));
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return Err(NormalizeError::InvalidDomain(
            "a single label is not a public domain".into(),
        ));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(NormalizeError::InvalidDomain("empty label".into()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NormalizeError::InvalidDomain(
                "a label is longer than 63 bytes".into(),
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NormalizeError::InvalidDomain(
                "only letters, digits and hyphens are allowed".into(),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NormalizeError::InvalidDomain(
                "a label starts or ends with a hyphen".into(),
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NormalizeError::IpAddress);
    }
    Ok(())
}

/// Registrable domains of free-mail providers, matched exactly.
const FREE_MAIL_DOMAINS: &[&str] = &[
    "126.com",
    "139.com",
    "163.com",
    "aim.com",
    "bk.ru",
    "daum.net",
    "email.com",
    "fastmail.com",
    "fastmail.fm",
    "gmail.com",
    "googlemail.com",
    "hanmail.net",
    "hushmail.com",
    "icloud.com",
    "inbox.ru",
    "interia.pl",
    "laposte.net",
    "libero.it",
    "list.ru",
    "live.com",
    "mac.com",
    "mail.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "naver.com",
    "o2.pl",
    "onet.pl",
    "pm.me",
    "proton.me",
    "protonmail.ch",
    "protonmail.com",
    "qq.com",
    "rambler.ru",
    "rediffmail.com",
    "rocketmail.com",
    "seznam.cz",
    "sina.cn",
    "sina.com",
    "tuta.io",
    "tutanota.com",
    "tutanota.de",
    "web.de",
    "wp.pl",
    "yeah.net",
    "ymail.com",
    "zoho.com",
    "zohomail.com",
];

/// Free-mail brands that register under many country suffixes (`yahoo.co.uk`, `gmx.de`,
/// `hotmail.fr`, ...): the registrable domain's first label is matched.
const FREE_MAIL_BRANDS: &[&str] = &["aol", "gmx", "hotmail", "outlook", "yahoo", "yandex"];

/// Whether `registrable` (an ASCII registrable domain) belongs to a free-mail provider.
pub fn is_free_mail(registrable: &str) -> bool {
    if FREE_MAIL_DOMAINS.contains(&registrable) {
        return true;
    }
    let first = registrable.split('.').next().unwrap_or("");
    FREE_MAIL_BRANDS.contains(&first)
}

/// Normalises a company's web address, e-mail address or domain to its registrable domain.
///
/// Accepts a URL (`https://www.Acme.co.uk/path?q`, with any scheme, user info and port), an
/// e-mail address (`jane@sales.acme.co.uk`: the part after the last `@`), or a bare domain
/// (`acme.co.uk`, `www.acme.co.uk/about`, `acme.co.uk.`). Returns the registrable domain — the
/// public suffix plus one label (eTLD+1) per the public suffix list, private section included so
/// `acme.github.io` stays distinct from `other.github.io` — in lowercase ASCII (IDNA).
///
/// Rejects IP addresses, hosts whose suffix is not in the list (`intranet.local`), public
/// suffixes themselves (`co.uk`), and free-mail providers with [`NormalizeError::FreeMail`]:
/// `gmail.com` names no company. The free-mail list is in [`is_free_mail`]; it is deliberately
/// broad, so the consumer sites of those providers' own companies are rejected too.
pub fn company_domain(s: &str) -> Result<String, NormalizeError> {
    let s = trimmed(s, MAX_DOMAIN_INPUT)?;
    let host = host_part(s)?;
    let ascii = ascii_domain(host)?;
    let registrable = registrable_domain(&ascii)?;
    if is_free_mail(&registrable) {
        return Err(NormalizeError::FreeMail(registrable));
    }
    Ok(registrable)
}

/// Extracts the host from a URL, an e-mail address or a bare domain.
fn host_part(s: &str) -> Result<&str, NormalizeError> {
    let rest = match s.find("://") {
        Some(i) => {
            let scheme = &s[..i];
            if scheme.is_empty()
                || !scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
            {
                return Err(NormalizeError::InvalidDomain("malformed URL scheme".into()));
            }
            &s[i + 3..]
        }
        None => s.strip_prefix("//").unwrap_or(s),
    };
    // The authority ends at the first path, query or fragment delimiter.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // User info (URL) or local part (e-mail) ends at the last '@'.
    let host_port = match authority.rfind('@') {
        Some(at) => {
            if at == 0 {
                return Err(NormalizeError::InvalidLocalPart("empty"));
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    if host_port.starts_with('[') {
        return Err(NormalizeError::IpAddress);
    }
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err(NormalizeError::InvalidDomain("malformed port".into())),
        None => host_port,
    };
    if host.chars().any(char::is_whitespace) {
        return Err(NormalizeError::InvalidDomain("contains whitespace".into()));
    }
    if host.is_empty() {
        return Err(NormalizeError::InvalidDomain("no host".into()));
    }
    Ok(host)
}

/// The registrable domain (eTLD+1) of a validated ASCII host.
fn registrable_domain(ascii: &str) -> Result<String, NormalizeError> {
    // The psl crate's list is keyed by Unicode labels (`рф`, not `xn--p1ai`), so look the
    // Unicode form up and cut the ASCII form at the same label: IDNA converts label by label.
    // A name without Punycode labels (`ascii` is already lowercase IDNA output) is its own
    // Unicode form, so most names skip the conversion (tests: the same result either way).
    let unicode: std::borrow::Cow<'_, str> = if ascii.split('.').any(|l| l.starts_with("xn--")) {
        let (unicode, result) = idna::domain_to_unicode(ascii);
        if result.is_err() {
            return Err(NormalizeError::InvalidDomain(
                "not a valid internationalised name".into(),
            ));
        }
        unicode.into()
    } else {
        ascii.into()
    };
    let domain = psl::domain(unicode.as_bytes())
        .ok_or_else(|| NormalizeError::NotRegistrable(ascii.to_owned()))?;
    if !domain.suffix().is_known() {
        return Err(NormalizeError::UnknownSuffix(ascii.to_owned()));
    }
    let domain_labels = domain.trim().as_bytes().split(|b| *b == b'.').count();
    let labels: Vec<&str> = ascii.split('.').collect();
    let Some(start) = labels.len().checked_sub(domain_labels) else {
        return Err(NormalizeError::InvalidDomain(
            "inconsistent internationalised name".into(),
        ));
    };
    Ok(labels[start..].join("."))
}

/// Normalises a phone number to E.164 (`+` country code and national number, digits only).
///
/// `default_region` (an ISO 3166-1 alpha-2 code such as `US` or `GB`, any case) is used when the
/// number carries no international prefix: `"(415) 555-2671"` with `US` gives `+14155552671`,
/// `"+44 20 7946 0958"` gives `+442079460958` whatever the region. Numbers that libphonenumber's
/// metadata does not consider valid are rejected. An extension (`x123`) is dropped: E.164 has
/// none, and the main line is what identifies a contact.
pub fn phone(s: &str, default_region: &str) -> Result<String, NormalizeError> {
    let s = trimmed(s, MAX_PHONE_INPUT)?;
    let region_code = default_region.trim().to_ascii_uppercase();
    let region: phonenumber::country::Id = region_code
        .parse()
        .map_err(|_| NormalizeError::InvalidRegion(region_code.clone()))?;
    let number = phonenumber::parse(Some(region), s)
        .map_err(|e| NormalizeError::InvalidPhone(e.to_string().into()))?;
    if !phonenumber::is_valid(&number) {
        return Err(NormalizeError::InvalidPhone(
            "not a valid number for its region".into(),
        ));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `registrable_domain` as it was before its shortcut: always through the Unicode form.
    fn registrable_via_unicode(ascii: &str) -> Result<String, NormalizeError> {
        let (unicode, result) = idna::domain_to_unicode(ascii);
        if result.is_err() {
            return Err(NormalizeError::InvalidDomain(
                "not a valid internationalised name".into(),
            ));
        }
        let domain = psl::domain(unicode.as_bytes())
            .ok_or_else(|| NormalizeError::NotRegistrable(ascii.to_owned()))?;
        if !domain.suffix().is_known() {
            return Err(NormalizeError::UnknownSuffix(ascii.to_owned()));
        }
        let domain_labels = domain.trim().as_bytes().split(|b| *b == b'.').count();
        let labels: Vec<&str> = ascii.split('.').collect();
        let Some(start) = labels.len().checked_sub(domain_labels) else {
            return Err(NormalizeError::InvalidDomain(
                "inconsistent internationalised name".into(),
            ));
        };
        Ok(labels[start..].join("."))
    }

    proptest! {
        #[test]
        fn registrable_domain_shortcut_changes_no_result(
            labels in prop::collection::vec(
                prop_oneof![
                    "[a-z0-9-]{1,12}",
                    "xn--[a-z0-9-]{1,10}",
                    Just("co".to_string()), Just("uk".to_string()), Just("com".to_string()),
                    Just("github".to_string()), Just("io".to_string()), Just("xn--p1ai".to_string()),
                    Just("xn--bcher-kva".to_string()), Just("blogspot".to_string()),
                    Just("*".to_string()), Just("".to_string()),
                ],
                1..5,
            ),
            raw in "[a-zA-Z0-9.\\-\u{e9}\u{0440}\u{0444}]{0,30}",
        ) {
            // Names as `company_domain` hands them over: IDNA output that passed the host rules.
            let joined = labels.join(".");
            for name in [joined.as_str(), raw.as_str()] {
                if let Ok(ascii) = ascii_domain(name) {
                    prop_assert_eq!(
                        registrable_domain(&ascii).map_err(|e| e.to_string()),
                        registrable_via_unicode(&ascii).map_err(|e| e.to_string()),
                        "for {:?}", ascii
                    );
                }
            }
        }
    }

    #[test]
    fn email_basics() {
        assert_eq!(
            email("  Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(
            email("jane+crm@example.com").unwrap(),
            "jane+crm@example.com"
        );
        assert_eq!(email("jane@example.com.").unwrap(), "jane@example.com");
        assert_eq!(email("JANE@BÜCHER.DE").unwrap(), "jane@xn--bcher-kva.de");
        assert_eq!(
            email("jane@xn--bcher-kva.de").unwrap(),
            "jane@xn--bcher-kva.de"
        );
    }

    #[test]
    fn gmail_rules() {
        assert_eq!(email("J.a.n.e+news@gmail.com").unwrap(), "jane@gmail.com");
        assert_eq!(
            email("jane.doe@GoogleMail.com").unwrap(),
            "janedoe@gmail.com"
        );
        assert_eq!(
            email("janedoe+a+b@gmail.com.").unwrap(),
            "janedoe@gmail.com"
        );
        assert!(matches!(
            email("+tag@gmail.com"),
            Err(NormalizeError::InvalidLocalPart(_))
        ));
        // Other providers keep dots and tags.
        assert_eq!(email("j.ane+x@outlook.com").unwrap(), "j.ane+x@outlook.com");
    }

    #[test]
    fn email_rejects() {
        use NormalizeError::*;
        assert_eq!(email(""), Err(Empty));
        assert_eq!(email("   "), Err(Empty));
        assert_eq!(email("jane.example.com"), Err(MissingAt));
        assert_eq!(email("a@b@example.com"), Err(MultipleAt));
        assert!(matches!(email("@example.com"), Err(InvalidLocalPart(_))));
        assert!(matches!(email("jane@"), Err(InvalidDomain(_))));
        assert!(matches!(
            email("ja ne@example.com"),
            Err(InvalidLocalPart(_))
        ));
        assert!(matches!(email("jane@exa mple.com"), Err(InvalidDomain(_))));
        assert!(matches!(
            email(".jane@example.com"),
            Err(InvalidLocalPart(_))
        ));
        assert!(matches!(
            email("ja..ne@example.com"),
            Err(InvalidLocalPart(_))
        ));
        assert!(matches!(
            email("\"ja\"@example.com"),
            Err(InvalidLocalPart(_))
        ));
        assert!(matches!(email("jane@localhost"), Err(InvalidDomain(_))));
        assert!(matches!(email("jane@exa_mple.com"), Err(InvalidDomain(_))));
        assert!(matches!(email("jane@-example.com"), Err(InvalidDomain(_))));
        assert!(matches!(email("jane@example..com"), Err(InvalidDomain(_))));
        assert_eq!(email("jane@10.0.0.1"), Err(IpAddress));
        assert_eq!(email("jane@[10.0.0.1]"), Err(IpAddress));
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(matches!(email(&long), Err(InvalidLocalPart(_))));
        assert!(matches!(email(&"a".repeat(600)), Err(TooLong { .. })));
    }

    #[test]
    fn company_domain_forms() {
        for input in [
            "https://www.Acme.co.uk/path",
            "http://user:pw@shop.acme.co.uk:8443/a?b#c",
            "jane@sales.acme.co.uk",
            "acme.co.uk",
            "ACME.CO.UK.",
            "www.acme.co.uk/about",
            "  //acme.co.uk  ",
        ] {
            assert_eq!(company_domain(input).unwrap(), "acme.co.uk", "{input}");
        }
        assert_eq!(company_domain("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(
            company_domain("shop.BÜCHER.de").unwrap(),
            "xn--bcher-kva.de"
        );
        assert_eq!(
            company_domain("xn--bcher-kva.de").unwrap(),
            "xn--bcher-kva.de"
        );
        // An IDN public suffix (.рф is xn--p1ai).
        assert_eq!(
            company_domain("www.пример.рф").unwrap(),
            company_domain("xn--e1afmkfd.xn--p1ai").unwrap()
        );
        assert_eq!(
            company_domain("www.пример.рф").unwrap(),
            "xn--e1afmkfd.xn--p1ai"
        );
        // Private-section suffixes keep tenants apart.
        assert_eq!(company_domain("acme.github.io").unwrap(), "acme.github.io");
        assert_eq!(company_domain("a.b.example.com").unwrap(), "example.com");
    }

    #[test]
    fn company_domain_rejects() {
        use NormalizeError::*;
        assert_eq!(company_domain("co.uk"), Err(NotRegistrable("co.uk".into())));
        assert_eq!(
            company_domain("com"),
            Err(InvalidDomain(
                "a single label is not a public domain".into()
            ))
        );
        assert_eq!(
            company_domain("intranet.local"),
            Err(UnknownSuffix("intranet.local".into()))
        );
        assert_eq!(company_domain("https://10.1.2.3/x"), Err(IpAddress));
        assert_eq!(company_domain("http://[::1]:80/"), Err(IpAddress));
        assert_eq!(
            company_domain("jane@gmail.com"),
            Err(FreeMail("gmail.com".into()))
        );
        assert_eq!(
            company_domain("mail.yahoo.co.uk"),
            Err(FreeMail("yahoo.co.uk".into()))
        );
        assert_eq!(company_domain("GMX.de"), Err(FreeMail("gmx.de".into())));
        assert_eq!(
            company_domain("https://proton.me"),
            Err(FreeMail("proton.me".into()))
        );
        assert!(matches!(
            company_domain("acme.com:80x"),
            Err(InvalidDomain(_))
        ));
        assert!(matches!(
            company_domain("ht tp://acme.com"),
            Err(InvalidDomain(_))
        ));
        assert!(matches!(
            company_domain("@acme.com"),
            Err(InvalidLocalPart(_))
        ));
        assert_eq!(company_domain(""), Err(Empty));
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(phone("(415) 555-2671", "US").unwrap(), "+14155552671");
        assert_eq!(phone("+44 20 7946 0958", "US").unwrap(), "+442079460958");
        assert_eq!(phone("020 7946 0958", "gb").unwrap(), "+442079460958");
        assert_eq!(phone("+14155552671", "GB").unwrap(), "+14155552671");
        assert_eq!(phone("415-555-2671 x 123", "US").unwrap(), "+14155552671");
        assert!(matches!(
            phone("12", "US"),
            Err(NormalizeError::InvalidPhone(_))
        ));
        assert!(matches!(
            phone("not a number", "US"),
            Err(NormalizeError::InvalidPhone(_))
        ));
        assert!(matches!(
            phone("(415) 555-2671", "XX"),
            Err(NormalizeError::InvalidRegion(_))
        ));
        assert!(matches!(
            phone("(415) 555-2671", ""),
            Err(NormalizeError::InvalidRegion(_))
        ));
        assert!(matches!(
            phone("+1 000 000 0000", "US"),
            Err(NormalizeError::InvalidPhone(_))
        ));
        assert_eq!(phone(" ", "US"), Err(NormalizeError::Empty));
    }

    #[test]
    fn kind_tags_are_prefix_free() {
        let ids = [
            Identifier::Email("x".into()),
            Identifier::Domain("x".into()),
            Identifier::Phone("x".into()),
        ];
        for a in &ids {
            assert!(!a.kind_tag().contains(&0));
            for b in &ids {
                if a != b {
                    assert!(!b.kind_tag().starts_with(a.kind_tag()));
                }
            }
        }
        assert_eq!(
            Identifier::Email("a@b.co".into()).framed(),
            b"email\0a@b.co"
        );
    }
}
