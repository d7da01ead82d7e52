//! A store made by an earlier release keeps its data through later migrations: a database at
//! migration 6 (before the CRM's narrow tables became `WITHOUT ROWID`) is filled by hand, then
//! opened by today's store, which migrates it and reads every row back.

use meshwork_domain::{JobId, RecordId, WorkspaceId};
use meshwork_store::Store;
use meshwork_store_sqlite::SqliteStore;
use sqlx::Connection as _;

/// The migrations up to 6, as earlier releases shipped them (same text, so same checksums).
const BEFORE: &[(&str, &str)] = &[
    (
        "0001_foundation.sql",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (
        "0002_totp_last_step.sql",
        include_str!("../migrations/0002_totp_last_step.sql"),
    ),
    ("0003_crm.sql", include_str!("../migrations/0003_crm.sql")),
    (
        "0004_sources.sql",
        include_str!("../migrations/0004_sources.sql"),
    ),
    (
        "0005_overlap.sql",
        include_str!("../migrations/0005_overlap.sql"),
    ),
    (
        "0006_remote_partnerships.sql",
        include_str!("../migrations/0006_remote_partnerships.sql"),
    ),
];

#[tokio::test]
async fn a_store_at_migration_6_keeps_its_keys_links_changes_and_import_items() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    for (name, sql) in BEFORE {
        std::fs::write(migrations.join(name), sql).unwrap();
    }
    let db = dir.path().join("meshwork.db");
    let ws = WorkspaceId::new();
    let (person, company) = (RecordId::new(), RecordId::new());
    let job = JobId::new();
    let key = [7u8; 32];
    {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", db.display()))
                .await
                .unwrap();
        sqlx::migrate::Migrator::new(migrations.as_path())
            .await
            .unwrap()
            .run(&mut conn)
            .await
            .unwrap();
        let (w, p, c, j) = (
            ws.to_string(),
            person.to_string(),
            company.to_string(),
            job.to_string(),
        );
        for (sql, binds) in [
            (
                "INSERT INTO workspaces (id, name_sealed, created_at, last_seq) VALUES (?1, x'00', 1, 2)",
                vec![w.clone()],
            ),
            (
                "INSERT INTO crm_records (id, workspace_id, kind, data_sealed, occurred_at, created_at, updated_at, version) VALUES (?1, ?2, 'contact', x'01', 1, 1, 1, 1), (?3, ?2, 'company', x'02', 1, 1, 1, 1)",
                vec![p.clone(), w.clone(), c.clone()],
            ),
            (
                "INSERT INTO crm_links (workspace_id, from_id, to_id, role) VALUES (?1, ?2, ?3, 'company')",
                vec![w.clone(), p.clone(), c.clone()],
            ),
            (
                "INSERT INTO changes (workspace_id, seq, entity, entity_id, op, at) VALUES (?1, 1, 'company', ?3, 'create', 1), (?1, 2, 'contact', ?2, 'create', 1)",
                vec![w.clone(), p.clone(), c.clone()],
            ),
            (
                "INSERT INTO jobs (id, workspace_id, kind, state, spec_sealed, progress_sealed, cursor, created_by, created_at, updated_at) VALUES (?1, ?2, 'import', 'done', x'03', x'04', 2, 'someone', 1, 1)",
                vec![j.clone(), w.clone()],
            ),
            (
                "INSERT INTO import_items (job_id, record_id, action, previous_sealed) VALUES (?1, ?2, 'created', NULL), (?1, ?3, 'updated', x'05')",
                vec![j.clone(), p.clone(), c.clone()],
            ),
        ] {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&mut conn).await.unwrap();
        }
        sqlx::query("INSERT INTO crm_keys (workspace_id, key_kind, key_index, record_id) VALUES (?1, 'contact.email', ?2, ?3)")
            .bind(&w)
            .bind(&key[..])
            .bind(&p)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    let store = SqliteStore::open(&db).await.unwrap();
    assert_eq!(
        store
            .crm_find_keys(ws, "contact.email", &[key])
            .await
            .unwrap(),
        vec![(key, person)]
    );
    let links = store.crm_links_from(ws, &[person]).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].to, links[0].role.as_str()), (company, "company"));
    assert_eq!(
        store.crm_links_to(ws, company, None).await.unwrap().len(),
        1
    );
    let changes = store.changes_since(ws, 0, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.seq, c.entity.as_str(), c.entity_id.clone()))
            .collect::<Vec<_>>(),
        vec![
            (1, "company", company.to_string()),
            (2, "contact", person.to_string())
        ]
    );
    let mut items = store.import_items(job, None, 10).await.unwrap();
    items.sort_by_key(|i| i.record);
    let mut want = vec![
        (person, "created", None),
        (company, "updated", Some(vec![5u8])),
    ];
    want.sort_by_key(|w| w.0);
    assert_eq!(
        items
            .iter()
            .map(|i| (i.record, i.action.as_str(), i.previous_sealed.clone()))
            .collect::<Vec<_>>(),
        want
    );
    // The migrated tables keep their rules: a key is still unique in its workspace, and
    // deleting a record still deletes its keys and links.
    let dup = meshwork_store::CrmBatch {
        ops: vec![meshwork_store::CrmOp::Put {
            record: meshwork_store::RecordRow {
                id: RecordId::new(),
                workspace_id: ws,
                kind: "contact".into(),
                data_sealed: vec![9],
                occurred_at: 2,
                created_at: 2,
                updated_at: 2,
                version: 1,
            },
            expected_version: None,
            keys: vec![meshwork_store::KeyEntry {
                kind: "contact.email".into(),
                index: key,
            }],
            links: None,
        }],
    };
    assert!(store.crm_apply(ws, &dup, 2).await.is_err());
    store
        .crm_apply(
            ws,
            &meshwork_store::CrmBatch {
                ops: vec![meshwork_store::CrmOp::Delete {
                    id: person,
                    kind: "contact".into(),
                }],
            },
            3,
        )
        .await
        .unwrap();
    assert!(store
        .crm_find_keys(ws, "contact.email", &[key])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .crm_links_to(ws, company, None)
        .await
        .unwrap()
        .is_empty());
}
