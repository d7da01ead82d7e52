//! A deterministic generator of realistic CRM export files, for tests, benchmarks and demos.
//!
//! The same seed always gives the same bytes (ChaCha8 seeded from the `u64`; no clock, no
//! hashing of addresses). Rows are written as they are made, so a million-row file costs no
//! more memory than a ten-row one. The files use the HubSpot export layout; owner columns hold
//! the owner's e-mail address, which is what Meshwork matches owners by.
//!
//! The contact file has the flaws real exports have: about 1% of rows repeat an earlier e-mail
//! address in different letter case, names carry accents and non-Latin letters, phone numbers
//! come in several national and international formats, and some optional cells are empty.

use std::fmt::Write as _;
use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (as written, as in an e-mail address)
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Anna", "anna"),
    ("Ben", "ben"),
    ("Chloé", "chloe"),
    ("Daniel", "daniel"),
    ("Emma", "emma"),
    ("François", "francois"),
    ("Greta", "greta"),
    ("Hiroshi", "hiroshi"),
    ("Ingrid", "ingrid"),
    ("Jürgen", "juergen"),
    ("Katarzyna", "katarzyna"),
    ("Liam", "liam"),
    ("María", "maria"),
    ("Noah", "noah"),
    ("Olivia", "olivia"),
    ("Paweł", "pawel"),
    ("Quentin", "quentin"),
    ("Rosa", "rosa"),
    ("Søren", "soeren"),
    ("Thomas", "thomas"),
    ("Úrsula", "ursula"),
    ("Victor", "victor"),
    ("Wei", "wei"),
    ("Ximena", "ximena"),
    ("Yusuf", "yusuf"),
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("Łukasz", "lukasz"),
    ("Aoife", "aoife"),
    ("Björn", "bjoern"),
    ("Mohammed", "mohammed"),
    ("Priya", "priya"),
    ("Chiara", "chiara"),
    ("Nikolai", "nikolai"),
    ("Fatima", "fatima"),
    ("Lucía", "lucia"),
    ("Mei", "mei"),
    ("Ravi", "ravi"),
    ("Sarah", "sarah"),
    ("James", "james"),
    ("Ελένη", "eleni"),
    ("Дмитрий", "dmitry"),
    ("美咲", "misaki"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Müller", "mueller"),
    ("Schmidt", "schmidt"),
    ("García", "garcia"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Nguyễn", "nguyen"),
    ("Kowalski", "kowalski"),
    ("Rossi", "rossi"),
    ("Dubois", "dubois"),
    ("O'Brien", "obrien"),
    ("Andersson", "andersson"),
    ("Novák", "novak"),
    ("Fernández", "fernandez"),
    ("Yılmaz", "yilmaz"),
    ("Tanaka", "tanaka"),
    ("Kim", "kim"),
    ("Patel", "patel"),
    ("Brown", "brown"),
    ("Wilson", "wilson"),
    ("Martin", "martin"),
    ("Jensen", "jensen"),
    ("Papadopoulos", "papadopoulos"),
    ("Ivanova", "ivanova"),
    ("Silva", "silva"),
    ("Nowak", "nowak"),
    ("Weber", "weber"),
    ("Schäfer", "schaefer"),
    ("Lefèvre", "lefevre"),
    ("van der Berg", "vanderberg"),
    ("Østergaard", "oestergaard"),
    ("Chen", "chen"),
    ("Okafor", "okafor"),
    ("Иванов", "ivanov"),
    ("佐藤", "sato"),
];

const COMPANY_WORDS: &[&str] = &[
    "Blue", "Harbor", "Summit", "Pine", "Atlas", "Nordic", "Copper", "Granite", "Silver", "Cedar",
    "Vertex", "Lumen", "Quantum", "Orbit", "Meadow", "River", "Falcon", "Beacon", "Iron", "Maple",
    "Crest", "Delta", "Echo", "Polar",
];
const COMPANY_SUFFIXES: &[&str] = &[
    "Labs",
    "GmbH",
    "Inc.",
    "Ltd",
    "Systems",
    "Partners",
    "Logistics",
    "Analytics",
    "S.A.",
    "& Co.",
    "Software",
    "AG",
];
const TLDS: &[&str] = &["com", "io", "de", "co.uk", "net", "fr", "nl", "es"];
const INDUSTRIES: &[&str] = &[
    "COMPUTER_SOFTWARE",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "CONSTRUCTION",
    "MARKETING_AND_ADVERTISING",
    "RENEWABLES_ENVIRONMENT",
];
const JOB_TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Executive",
    "Sales Development Representative",
    "Marketing Manager",
    "Software Engineer",
    "Procurement Lead",
    "Office Manager",
    "VP Operations",
    "Geschäftsführer",
    "Directrice commerciale",
    "Customer Success Manager",
    "Finance Director",
    "",
];
const OWNERS: &[&str] = &[
    "sarah.chen@meshwork.example",
    "tom.becker@meshwork.example",
    "amelie.laurent@meshwork.example",
    "raj.iyer@meshwork.example",
    "ola.nordmann@meshwork.example",
];
const LIFECYCLE: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
];
const PLACES: &[(&str, &str)] = &[
    ("Berlin", "Germany"),
    ("München", "Germany"),
    ("London", "United Kingdom"),
    ("Paris", "France"),
    ("Lyon", "France"),
    ("New York", "United States"),
    ("Austin", "United States"),
    ("Madrid", "Spain"),
    ("Amsterdam", "Netherlands"),
    ("Kraków", "Poland"),
    ("København", "Denmark"),
    ("São Paulo", "Brazil"),
];
const STREETS: &[&str] = &[
    "Hauptstraße",
    "Main Street",
    "Rue de la Paix",
    "Calle Mayor",
    "Keizersgracht",
    "High Street",
];
const PIPELINES: &[(&str, &[&str])] = &[
    (
        "Sales Pipeline",
        &[
            "appointmentscheduled",
            "qualifiedtobuy",
            "presentationscheduled",
            "contractsent",
            "closedwon",
            "closedlost",
        ],
    ),
    (
        "Renewals",
        &["Renewal due", "Negotiation", "Renewed", "Churned"],
    ),
];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP"];

/// How many recent e-mail addresses a within-file duplicate is drawn from.
const RECENT_EMAILS: usize = 1024;

struct Company {
    name: String,
    domain: String,
}

/// The shared state of a generator run: the seeded RNG and a pool of companies.
struct Gen {
    rng: ChaCha8Rng,
    companies: Vec<Company>,
    first_id: u64,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let companies = (0..400)
            .map(|_| {
                let a = COMPANY_WORDS[rng.gen_range(0..COMPANY_WORDS.len())];
                let b = COMPANY_WORDS[rng.gen_range(0..COMPANY_WORDS.len())];
                let suffix = COMPANY_SUFFIXES[rng.gen_range(0..COMPANY_SUFFIXES.len())];
                let tld = TLDS[rng.gen_range(0..TLDS.len())];
                Company {
                    name: format!("{a} {b} {suffix}"),
                    domain: format!("{}{}.{tld}", a.to_lowercase(), b.to_lowercase()),
                }
            })
            .collect();
        let first_id = rng.gen_range(1_000..10_000_000u64) * 100;
        Gen {
            rng,
            companies,
            first_id,
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    fn company(&mut self) -> usize {
        self.rng.gen_range(0..self.companies.len())
    }

    fn digits(&mut self, out: &mut String, n: usize) {
        for _ in 0..n {
            out.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
        }
    }

    /// A phone number in one of several national and international formats.
    fn phone(&mut self, out: &mut String) {
        out.clear();
        match self.rng.gen_range(0..7) {
            0 => {
                out.push_str("+1 (");
                out.push(char::from(b'2' + self.rng.gen_range(0..8u8)));
                self.digits(out, 2);
                out.push_str(") 555-");
                self.digits(out, 4);
            }
            1 => {
                out.push(char::from(b'2' + self.rng.gen_range(0..8u8)));
                self.digits(out, 2);
                out.push('.');
                self.digits(out, 3);
                out.push('.');
                self.digits(out, 4);
            }
            2 => {
                out.push_str("+49 30 ");
                self.digits(out, 7);
            }
            3 => {
                out.push('0');
                out.push(char::from(b'2' + self.rng.gen_range(0..8u8)));
                self.digits(out, 2);
                out.push(' ');
                self.digits(out, 6);
            }
            4 => {
                out.push_str("+44 20 7946 ");
                self.digits(out, 4);
            }
            5 => {
                out.push_str("+33 1");
                for _ in 0..4 {
                    out.push(' ');
                    self.digits(out, 2);
                }
            }
            _ => {
                out.push_str("+1");
                out.push(char::from(b'2' + self.rng.gen_range(0..8u8)));
                self.digits(out, 9);
            }
        }
    }

    /// A "YYYY-MM-DD" date between `from` and `to` (years).
    fn date(&mut self, out: &mut String, from: u32, to: u32) {
        out.clear();
        let (y, m, d) = (
            self.rng.gen_range(from..=to),
            self.rng.gen_range(1..=12u32),
            self.rng.gen_range(1..=28u32),
        );
        let _ = write!(out, "{y}-{m:02}-{d:02}");
    }
}

fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .buffer_capacity(64 * 1024)
        .from_writer(out)
}

fn to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("error writing generated CSV: {other:?}")),
    }
}

/// The header of [`generate_hubspot_contacts`]'s files.
pub const HUBSPOT_CONTACT_HEADER: [&str; 14] = [
    "Record ID",
    "First Name",
    "Last Name",
    "Email",
    "Phone Number",
    "Mobile Phone Number",
    "Job Title",
    "Company Name",
    "Company Domain Name",
    "Contact owner",
    "Lifecycle Stage",
    "Create Date",
    "City",
    "Country/Region",
];

/// Writes `rows` contacts in the HubSpot contact export layout, the same bytes for the same
/// seed. About 1% of rows reuse an earlier row's e-mail address in different letter case.
pub fn generate_hubspot_contacts<W: Write>(seed: u64, rows: u64, out: W) -> io::Result<()> {
    let mut g = Gen::new(seed);
    let mut w = csv_writer(out);
    w.write_record(HUBSPOT_CONTACT_HEADER).map_err(to_io)?;
    let mut recent: Vec<String> = Vec::with_capacity(RECENT_EMAILS);
    let (mut id, mut email, mut phone, mut mobile, mut created) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    for i in 0..rows {
        let &(first, first_ascii) = g.pick(FIRST_NAMES);
        let &(last, last_ascii) = g.pick(LAST_NAMES);
        let c = g.company();
        email.clear();
        if !recent.is_empty() && g.rng.gen_bool(0.01) {
            let earlier = &recent[g.rng.gen_range(0..recent.len())];
            if g.rng.gen_bool(0.5) {
                email.push_str(&earlier.to_ascii_uppercase());
            } else {
                // Capitalise the local part's first letter (addresses start with a letter).
                email.push(earlier.as_bytes()[0].to_ascii_uppercase() as char);
                email.push_str(&earlier[1..]);
            }
        } else {
            // The row number keeps addresses unique: names hold no digits.
            let domain = if g.rng.gen_bool(0.15) {
                *g.pick(&["gmail.com", "outlook.com", "web.de", "yahoo.fr"])
            } else {
                g.companies[c].domain.as_str()
            };
            match g.rng.gen_range(0..4) {
                0 => write!(email, "{first_ascii}.{last_ascii}{i}@{domain}"),
                1 => write!(email, "{}{last_ascii}{i}@{domain}", &first_ascii[..1]),
                2 => write!(email, "{first_ascii}_{last_ascii}{i}@{domain}"),
                _ => write!(email, "{last_ascii}.{first_ascii}{i}@{domain}"),
            }
            .expect("writing to a String");
            if recent.len() < RECENT_EMAILS {
                recent.push(email.clone());
            } else {
                recent[(i as usize) % RECENT_EMAILS].clone_from(&email);
            }
        }
        g.phone(&mut phone);
        if g.rng.gen_bool(0.4) {
            g.phone(&mut mobile);
        } else {
            mobile.clear();
        }
        if g.rng.gen_bool(0.03) {
            phone.clear();
        }
        g.date(&mut created, 2019, 2025);
        created.push_str(&format!(
            " {:02}:{:02}",
            g.rng.gen_range(0..24u32),
            g.rng.gen_range(0..60u32)
        ));
        id.clear();
        write!(id, "{}", g.first_id + i).expect("writing to a String");
        let title = *g.pick(JOB_TITLES);
        let owner = *g.pick(OWNERS);
        let stage = *g.pick(LIFECYCLE);
        let &(city, country) = g.pick(PLACES);
        let company = &g.companies[c];
        w.write_record([
            id.as_str(),
            first,
            last,
            email.as_str(),
            phone.as_str(),
            mobile.as_str(),
            title,
            company.name.as_str(),
            company.domain.as_str(),
            owner,
            stage,
            created.as_str(),
            city,
            country,
        ])
        .map_err(to_io)?;
    }
    w.flush()
}

/// The header of [`generate_hubspot_companies`]'s files.
pub const HUBSPOT_COMPANY_HEADER: [&str; 10] = [
    "Record ID",
    "Company name",
    "Company Domain Name",
    "Industry",
    "Number of Employees",
    "Street Address",
    "City",
    "Country/Region",
    "Company owner",
    "Create Date",
];

/// Writes `rows` companies in the HubSpot company export layout, the same bytes for the same
/// seed. Names and domains are unique within a file.
pub fn generate_hubspot_companies<W: Write>(seed: u64, rows: u64, out: W) -> io::Result<()> {
    let mut g = Gen::new(seed);
    let mut w = csv_writer(out);
    w.write_record(HUBSPOT_COMPANY_HEADER).map_err(to_io)?;
    let (mut id, mut name, mut domain, mut size, mut street, mut created) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    for i in 0..rows {
        let c = g.company();
        let base = &g.companies[c];
        // The row number keeps names and domains unique: the pool is small.
        name.clear();
        domain.clear();
        write!(name, "{} {}", base.name, i + 1).expect("writing to a String");
        let (host, tld) = base
            .domain
            .split_once('.')
            .expect("pool domains have a dot");
        write!(domain, "{host}{}.{tld}", i + 1).expect("writing to a String");
        size.clear();
        if g.rng.gen_bool(0.9) {
            write!(size, "{}", g.rng.gen_range(1..5000u32)).expect("writing to a String");
        }
        street.clear();
        write!(street, "{} {}", g.pick(STREETS), g.rng.gen_range(1..200u32))
            .expect("writing to a String");
        g.date(&mut created, 2015, 2025);
        id.clear();
        write!(id, "{}", g.first_id + i).expect("writing to a String");
        let industry = *g.pick(INDUSTRIES);
        let &(city, country) = g.pick(PLACES);
        let owner = *g.pick(OWNERS);
        w.write_record([
            id.as_str(),
            name.as_str(),
            domain.as_str(),
            industry,
            size.as_str(),
            street.as_str(),
            city,
            country,
            owner,
            created.as_str(),
        ])
        .map_err(to_io)?;
    }
    w.flush()
}

/// The header of [`generate_hubspot_deals`]'s files.
pub const HUBSPOT_DEAL_HEADER: [&str; 10] = [
    "Record ID",
    "Deal Name",
    "Amount",
    "Currency",
    "Pipeline",
    "Deal Stage",
    "Close Date",
    "Associated Company",
    "Company Domain Name",
    "Deal owner",
];

/// Writes `rows` deals in the HubSpot deal export layout, the same bytes for the same seed.
pub fn generate_hubspot_deals<W: Write>(seed: u64, rows: u64, out: W) -> io::Result<()> {
    let mut g = Gen::new(seed);
    let mut w = csv_writer(out);
    w.write_record(HUBSPOT_DEAL_HEADER).map_err(to_io)?;
    let (mut id, mut name, mut amount, mut close) =
        (String::new(), String::new(), String::new(), String::new());
    for i in 0..rows {
        let c = g.company();
        let &(pipeline, stages) = g.pick(PIPELINES);
        let stage = *g.pick(stages);
        name.clear();
        let what = *g.pick(&["Renewal", "Expansion", "New business", "Pilot", "Licences"]);
        write!(
            name,
            "{} - {what} {}",
            g.companies[c].name,
            2020 + g.rng.gen_range(0..6u32)
        )
        .expect("writing to a String");
        amount.clear();
        if g.rng.gen_bool(0.95) {
            write!(
                amount,
                "{}.{:02}",
                g.rng.gen_range(500..250_000u32),
                g.rng.gen_range(0..100u32)
            )
            .expect("writing to a String");
        }
        g.date(&mut close, 2023, 2026);
        id.clear();
        write!(id, "{}", g.first_id + i).expect("writing to a String");
        let currency = *g.pick(CURRENCIES);
        let owner = *g.pick(OWNERS);
        let company = &g.companies[c];
        w.write_record([
            id.as_str(),
            name.as_str(),
            amount.as_str(),
            currency,
            pipeline,
            stage,
            close.as_str(),
            company.name.as_str(),
            company.domain.as_str(),
            owner,
        ])
        .map_err(to_io)?;
    }
    w.flush()
}
