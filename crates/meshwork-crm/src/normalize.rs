//! Normalisation of the values records are matched and compared by: emails, web domains, phone
//! numbers, amounts and dates as they arrive from people and from other CRMs' exports.

use meshwork_domain::EmailAddress;

/// The dedup key of an email: the address, trimmed and lower-cased.
pub fn email_key(email: &EmailAddress) -> String {
    email.normalized()
}

/// Free-mail providers: their domains say nothing about a company, so they are never used to
/// match companies.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
];

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain)
}

/// The registrable domain (public suffix plus one label) of a URL, an email address or a bare
/// host name: `https://www.Acme.co.uk/about` → `acme.co.uk`. `None` when there is no host or it
/// is itself a public suffix.
pub fn registrable_domain(raw: &str) -> Option<String> {
    let mut s = raw.trim().to_lowercase();
    if let Some((_, host)) = s.rsplit_once('@') {
        s = host.to_string();
    }
    if let Some((_, rest)) = s.split_once("://") {
        s = rest.to_string();
    }
    let host = s
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit_once(':')
        .map_or(
            s.split(['/', '?', '#']).next().unwrap_or_default(),
            |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    s.split(['/', '?', '#']).next().unwrap_or_default()
                }
            },
        )
        .trim_end_matches('.')
        .to_string();
    if host.is_empty()
        || host.len() > 253
        || !host.contains('.')
        || !host.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return None;
    }
    let domain = psl::domain_str(&host)?;
    Some(domain.to_string())
}

/// The digits of a phone number (a leading `+` kept), for matching and search: `+1 (555) 010-2030`
/// → `+15550102030`. `None` when it has fewer than 5 digits or characters a phone number has not.
pub fn phone_digits(raw: &str) -> Option<String> {
    let s = raw.trim();
    let cut = s
        .find("ext")
        .or_else(|| s.find("Ext"))
        .or_else(|| s.find(['x', 'X']))
        .unwrap_or(s.len());
    let main = s[..cut].trim();
    if !main
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c))
    {
        return None;
    }
    let digits: String = main.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 || digits.len() > 17 {
        return None;
    }
    Some(if main.starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    })
}

/// A decimal amount in canonical form (`"1234.5"` → `"1234.50"`; `"1,234.50"`, `"1.234,50"`,
/// `"€ 1 234"` are understood). At most 15 integer digits and 4 decimals.
pub fn parse_amount(raw: &str) -> Option<String> {
    let s: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !"$€£¥'".contains(*c))
        .collect();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let dots = s.matches('.').count();
    let commas = s.matches(',').count();
    // Which separator marks decimals: the later one when both appear; a lone one unless it
    // appears several times or groups exactly three digits after a non-zero integer part.
    let decimal = match (dots, commas) {
        (0, 0) => None,
        (_, 0) | (0, _) => {
            let sep = if dots > 0 { '.' } else { ',' };
            let i = s.rfind(sep)?;
            let grouped = s.len() - i - 1 == 3 && !s[..i].trim_start_matches('0').is_empty();
            (dots + commas == 1 && !grouped).then_some(i)
        }
        _ => s.rfind(['.', ',']),
    };
    let (int_part, frac) = match decimal {
        Some(i) => (s[..i].replace(['.', ','], ""), &s[i + 1..]),
        None => (s.replace(['.', ','], ""), ""),
    };
    let digits_only = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if (int_part.is_empty() && frac.is_empty())
        || !digits_only(&int_part)
        || !digits_only(frac)
        || int_part.len() > 15
        || frac.len() > 4
    {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let mut frac = frac.trim_end_matches('0').to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    let zero = int_part == "0" && frac.chars().all(|c| c == '0');
    Some(format!(
        "{}{int_part}.{frac}",
        if neg && !zero { "-" } else { "" }
    ))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn ymd(y: &str, m: &str, d: &str) -> Option<(i32, u32, u32)> {
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m))
        .then_some((y, m, d))
}

/// A calendar date as `YYYY-MM-DD`, from ISO dates (with or without a time after them),
/// `MM/DD/YYYY` (the US form HubSpot and Salesforce export) or `DD.MM.YYYY`.
pub fn parse_date(raw: &str) -> Option<String> {
    let s = raw.trim();
    let date = s.split(['T', ' ']).next()?;
    let parsed = if let [y, m, d] = date.split('-').collect::<Vec<_>>()[..] {
        (y.len() == 4).then(|| ymd(y, m, d)).flatten()
    } else if let [m, d, y] = date.split('/').collect::<Vec<_>>()[..] {
        (y.len() == 4).then(|| ymd(y, m, d)).flatten()
    } else if let [d, m, y] = date.split('.').collect::<Vec<_>>()[..] {
        (y.len() == 4).then(|| ymd(y, m, d)).flatten()
    } else {
        None
    };
    let (y, m, d) = parsed?;
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// A point in time in milliseconds since the epoch, from a number (milliseconds), an RFC 3339
/// timestamp (`2024-03-01T10:00:00Z`, `+02:00` offsets) or a date (midnight UTC).
pub fn parse_datetime(raw: &str) -> Option<i64> {
    let s = raw.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let date = parse_date(s)?;
    let (y, m, d) = ymd(&date[0..4], &date[5..7], &date[8..10])?;
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    let Some(time) = s.get(10..).map(|t| t.trim_start_matches(['T', ' '])) else {
        return Some(ms);
    };
    if time.is_empty() {
        return Some(ms);
    }
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, ""),
    };
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let min: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next().map_or(Some(0.0), |p| p.parse().ok())?;
    if h > 23 || min > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    ms += h * 3_600_000 + min * 60_000 + (sec * 1000.0) as i64;
    if !offset.is_empty() && offset != "Z" && offset != "z" {
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
        ms -= sign * (oh * 3_600_000 + om * 60_000);
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_come_from_urls_emails_and_hosts() {
        for (raw, want) in [
            ("https://www.Acme.co.uk/about?x=1", Some("acme.co.uk")),
            ("bob@mail.example.com", Some("example.com")),
            ("example.org", Some("example.org")),
            ("http://shop.example.com:8080/", Some("example.com")),
            ("co.uk", None),
            ("localhost", None),
            ("", None),
            ("not a domain.com", None),
        ] {
            assert_eq!(registrable_domain(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn phone_numbers_reduce_to_their_digits() {
        assert_eq!(
            phone_digits("+1 (555) 010-2030").as_deref(),
            Some("+15550102030")
        );
        assert_eq!(phone_digits("030 1234567").as_deref(), Some("0301234567"));
        assert_eq!(phone_digits("555-0102 x12").as_deref(), Some("5550102"));
        assert_eq!(phone_digits("call me"), None);
        assert_eq!(phone_digits("12"), None);
    }

    #[test]
    fn amounts_in_several_notations() {
        for (raw, want) in [
            ("1234.5", Some("1234.50")),
            ("1,234.50", Some("1234.50")),
            ("1.234,50", Some("1234.50")),
            ("1,234", Some("1234.00")),
            ("€ 1 234", Some("1234.00")),
            ("-0", Some("0.00")),
            ("-12.345678", None),
            ("0012", Some("12.00")),
            ("abc", None),
            ("", None),
            ("1e5", None),
        ] {
            assert_eq!(parse_amount(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn dates_in_iso_us_and_european_forms() {
        assert_eq!(parse_date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(
            parse_date("2024-03-15 10:22").as_deref(),
            Some("2024-03-15")
        );
        assert_eq!(parse_date("03/15/2024").as_deref(), Some("2024-03-15"));
        assert_eq!(parse_date("15.03.2024").as_deref(), Some("2024-03-15"));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("15/03/2024"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn datetimes_with_offsets() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_datetime("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(
            parse_datetime("2024-03-01T10:00:00.5Z"),
            Some(1_709_287_200_500)
        );
        assert_eq!(parse_datetime("1709287200500"), Some(1_709_287_200_500));
        assert_eq!(parse_datetime("2024-03-01T25:00Z"), None);
    }

    proptest::proptest! {
        #[test]
        fn amounts_are_idempotent(int in 0u64..1_000_000_000, frac in 0u32..100) {
            let s = format!("{int}.{frac:02}");
            let once = parse_amount(&s).unwrap();
            proptest::prop_assert_eq!(parse_amount(&once).unwrap(), once);
        }

        #[test]
        fn registrable_domain_is_idempotent(label in "[a-z][a-z0-9-]{0,10}[a-z0-9]", tld in "(com|org|co\\.uk|de|io)") {
            let d = format!("www.{label}.{tld}");
            let once = registrable_domain(&d).unwrap();
            proptest::prop_assert_eq!(registrable_domain(&once).unwrap(), once.clone());
            // `{label}.{tld}` is the registrable domain unless the public suffix list names it
            // a suffix itself (private-section entries such as `de.com` or `us.com`), in which
            // case `www.{label}.{tld}` is.
            let base = format!("{label}.{tld}");
            if psl::suffix_str(&base) == Some(base.as_str()) {
                proptest::prop_assert_eq!(once, d);
            } else {
                proptest::prop_assert_eq!(once, base);
            }
        }
    }
}
