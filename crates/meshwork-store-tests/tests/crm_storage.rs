//! The CRM part of the storage contract, on SQLite and PostgreSQL: batches are atomic, versions
//! and dedup keys are enforced, merges move relations, timelines page newest first, and every
//! record change lands in the change feed.

use meshwork_domain::{JobId, RecordId, UserId, WorkspaceId};
use meshwork_store::*;
use meshwork_testkit::{both_backends, TestDatabase};
use std::sync::Arc;

async fn workspace(store: &Arc<dyn Store>) -> WorkspaceId {
    let owner = UserRow {
        id: UserId::new(),
        email_index: meshwork_keyring::random_bytes::<32>(),
        email_sealed: vec![],
        name_sealed: vec![],
        company_sealed: vec![],
        job_title_sealed: vec![],
        password_hash: "$argon2id$test".into(),
        email_verified: true,
        age_confirmed_at: 1,
        totp_secret_sealed: None,
        totp_enabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: 1,
        updated_at: 1,
    };
    store.create_user(&owner).await.unwrap();
    let id = WorkspaceId::new();
    store
        .create_workspace(
            &WorkspaceRow {
                id,
                name_sealed: vec![9],
                created_at: 1,
                last_seq: 0,
            },
            owner.id,
            1,
        )
        .await
        .unwrap();
    id
}

fn record(ws: WorkspaceId, kind: &str, at: i64) -> RecordRow {
    RecordRow {
        id: RecordId::new(),
        workspace_id: ws,
        kind: kind.into(),
        data_sealed: vec![at as u8],
        occurred_at: at,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

fn key(kind: &str, b: u8) -> KeyEntry {
    KeyEntry {
        kind: kind.into(),
        index: [b; 32],
    }
}

fn put(r: &RecordRow, keys: Vec<KeyEntry>, links: Vec<(RecordId, &str)>) -> CrmOp {
    CrmOp::Put {
        record: r.clone(),
        expected_version: None,
        keys,
        links: Some(
            links
                .into_iter()
                .map(|(to, role)| LinkRow {
                    from: r.id,
                    to,
                    role: role.into(),
                })
                .collect(),
        ),
    }
}

both_backends!(
    a_batch_with_a_taken_key_writes_nothing,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let ws = workspace(&store).await;
        let a = record(ws, "contact", 10);
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![put(&a, vec![key("email", 1)], vec![])],
                },
                10,
            )
            .await
            .unwrap();
        let seq_before = store.workspace(ws).await.unwrap().unwrap().last_seq;
        let b = record(ws, "contact", 11);
        let c = record(ws, "contact", 12);
        let err = store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![
                        put(&b, vec![key("email", 2)], vec![]),
                        put(&c, vec![key("email", 1)], vec![]),
                    ],
                },
                12,
            )
            .await;
        assert!(
            matches!(err, Err(StoreError::Conflict("crm_keys"))),
            "{err:?}"
        );
        assert!(
            store.crm_record(ws, b.id).await.unwrap().is_none(),
            "b was rolled back"
        );
        assert_eq!(store.crm_count(ws, "contact").await.unwrap(), 1);
        assert_eq!(
            store.workspace(ws).await.unwrap().unwrap().last_seq,
            seq_before
        );
        let found = store
            .crm_find_keys(ws, "email", &[[1; 32], [2; 32]])
            .await
            .unwrap();
        assert_eq!(found, vec![([1; 32], a.id)]);
        // The same key in another workspace is no conflict.
        let other = workspace(&store).await;
        let d = record(other, "contact", 13);
        store
            .crm_apply(
                other,
                &CrmBatch {
                    ops: vec![put(&d, vec![key("email", 1)], vec![])],
                },
                13,
            )
            .await
            .unwrap();
        assert!(
            store.crm_record(ws, d.id).await.unwrap().is_none(),
            "records are per workspace"
        );
    }
);

both_backends!(
    updates_name_the_version_they_replace,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let ws = workspace(&store).await;
        let a = record(ws, "company", 10);
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![put(&a, vec![key("domain", 5)], vec![])],
                },
                10,
            )
            .await
            .unwrap();
        let mut v2 = a.clone();
        v2.version = 2;
        v2.data_sealed = vec![42];
        let update = |expected: i64, r: &RecordRow| CrmBatch {
            ops: vec![CrmOp::Put {
                record: r.clone(),
                expected_version: Some(expected),
                keys: vec![key("domain", 6)],
                links: None,
            }],
        };
        store.crm_apply(ws, &update(1, &v2), 20).await.unwrap();
        assert!(matches!(
            store.crm_apply(ws, &update(1, &v2), 21).await,
            Err(StoreError::Conflict("crm_records.version"))
        ));
        let got = store.crm_record(ws, a.id).await.unwrap().unwrap();
        assert_eq!((got.version, got.data_sealed.clone()), (2, vec![42]));
        // The keys were replaced, not added to.
        assert!(store
            .crm_find_keys(ws, "domain", &[[5; 32]])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .crm_find_keys(ws, "domain", &[[6; 32]])
                .await
                .unwrap()
                .len(),
            1
        );
        let changes = store.changes_since(ws, 0, 100).await.unwrap();
        let ops: Vec<_> = changes
            .iter()
            .filter(|c| c.entity == "company")
            .map(|c| c.op.as_str())
            .collect();
        assert_eq!(ops, ["create", "update"]);
        assert!(changes.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
);

both_backends!(
    timeline_pages_newest_first_over_items_and_events,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let ws = workspace(&store).await;
        let contact = record(ws, "contact", 1);
        let mut ops = vec![put(&contact, vec![], vec![])];
        let mut expected = Vec::new();
        for t in [5, 3, 9, 7] {
            let note = record(ws, "note", t);
            ops.push(put(&note, vec![], vec![(contact.id, "about")]));
            expected.push((t, note.id.as_uuid()));
        }
        for t in [4, 8] {
            let e = EventRow {
                id: uuid::Uuid::now_v7(),
                subject: contact.id,
                kind: "field_change".into(),
                details_sealed: vec![1],
                at: t,
            };
            expected.push((t, e.id));
            ops.push(CrmOp::Event(e));
        }
        store.crm_apply(ws, &CrmBatch { ops }, 10).await.unwrap();
        expected.sort_by(|a, b| b.cmp(a));
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store.crm_timeline(ws, contact.id, before, 4).await.unwrap();
            if page.is_empty() {
                break;
            }
            seen.extend(page.iter().map(|e| e.position()));
            before = page.last().map(|e| e.position());
        }
        assert_eq!(seen, expected);
    }
);

both_backends!(
    repoint_moves_links_and_events_then_delete_cascades,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let ws = workspace(&store).await;
        let company = record(ws, "company", 1);
        let keep = record(ws, "contact", 2);
        let lose = record(ws, "contact", 3);
        let note = record(ws, "note", 4);
        let deal = record(ws, "deal", 5);
        let event = EventRow {
            id: uuid::Uuid::now_v7(),
            subject: lose.id,
            kind: "field_change".into(),
            details_sealed: vec![],
            at: 6,
        };
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![
                        put(&company, vec![], vec![]),
                        put(&keep, vec![key("email", 1)], vec![(company.id, "company")]),
                        put(&lose, vec![key("email", 2)], vec![(company.id, "company")]),
                        put(&note, vec![], vec![(lose.id, "about")]),
                        put(
                            &deal,
                            vec![],
                            vec![(lose.id, "contact"), (keep.id, "contact")],
                        ),
                        CrmOp::Event(event),
                    ],
                },
                6,
            )
            .await
            .unwrap();
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![
                        CrmOp::Repoint {
                            from: lose.id,
                            to: keep.id,
                        },
                        CrmOp::Delete {
                            id: lose.id,
                            kind: "contact".into(),
                        },
                    ],
                },
                7,
            )
            .await
            .unwrap();
        assert!(store.crm_record(ws, lose.id).await.unwrap().is_none());
        assert!(store
            .crm_find_keys(ws, "email", &[[2; 32]])
            .await
            .unwrap()
            .is_empty());
        let timeline = store.crm_timeline(ws, keep.id, None, 10).await.unwrap();
        assert_eq!(
            timeline.len(),
            2,
            "the note and the event moved: {timeline:?}"
        );
        let deal_links = store.crm_links_from(ws, &[deal.id]).await.unwrap();
        assert_eq!(
            deal_links.len(),
            1,
            "the deal's two contact links became one"
        );
        assert_eq!(deal_links[0].to, keep.id);
        let to_company = store
            .crm_links_to(ws, company.id, Some("company"))
            .await
            .unwrap();
        assert_eq!(to_company.len(), 1);
        // Deleting the company removes the links to it.
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![CrmOp::Delete {
                        id: company.id,
                        kind: "company".into(),
                    }],
                },
                8,
            )
            .await
            .unwrap();
        assert!(store
            .crm_links_from(ws, &[keep.id])
            .await
            .unwrap()
            .is_empty());
    }
);

both_backends!(
    jobs_advance_with_their_work_and_list_their_items,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let ws = workspace(&store).await;
        let job = JobRow {
            id: JobId::new(),
            workspace_id: ws,
            kind: "import".into(),
            state: "running".into(),
            spec_sealed: vec![1],
            progress_sealed: vec![],
            cursor: 0,
            created_by: UserId::new(),
            created_at: 1,
            updated_at: 1,
        };
        store.create_job(&job).await.unwrap();
        assert_eq!(store.running_jobs().await.unwrap().len(), 1);
        let r = record(ws, "contact", 2);
        let item = ImportItemRow {
            job: job.id,
            record: r.id,
            action: "created".into(),
            previous_sealed: None,
        };
        store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![
                        put(&r, vec![], vec![]),
                        CrmOp::ImportItem(item.clone()),
                        CrmOp::ImportItem(ImportItemRow {
                            action: "updated".into(),
                            ..item.clone()
                        }),
                        CrmOp::Job {
                            id: job.id,
                            state: "done".into(),
                            cursor: 1,
                            progress_sealed: vec![7],
                        },
                    ],
                },
                3,
            )
            .await
            .unwrap();
        let got = store.job(ws, job.id).await.unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.cursor, got.progress_sealed),
            ("done", 1, vec![7])
        );
        assert!(store.running_jobs().await.unwrap().is_empty());
        assert_eq!(
            store.import_items(job.id, None, 10).await.unwrap(),
            vec![item]
        );
        // A batch for a job that is no longer running (ended, cancelled) is refused whole:
        // neither its records nor its progress are written.
        let late = record(ws, "contact", 4);
        let refused = store
            .crm_apply(
                ws,
                &CrmBatch {
                    ops: vec![
                        put(&late, vec![], vec![]),
                        CrmOp::Job {
                            id: job.id,
                            state: "running".into(),
                            cursor: 2,
                            progress_sealed: vec![8],
                        },
                    ],
                },
                5,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict("jobs.state"))),
            "{refused:?}"
        );
        assert!(store.crm_record(ws, late.id).await.unwrap().is_none());
        assert_eq!(store.job(ws, job.id).await.unwrap().unwrap().cursor, 1);
        // Deleting the workspace removes its records and jobs.
        store.delete_workspace(ws).await.unwrap();
        assert!(store.job(ws, job.id).await.unwrap().is_none());
        assert_eq!(store.crm_count(ws, "contact").await.unwrap(), 0);
    }
);

both_backends!(
    reading_records_by_id_returns_exactly_the_workspaces_records_among_them,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let (ws, other) = (workspace(&store).await, workspace(&store).await);
        // More than one statement's worth of ids (SQLite's bulk reader binds 500 at a time).
        let mine: Vec<RecordRow> = (0..1203)
            .map(|i| {
                let mut r = record(ws, if i % 3 == 0 { "company" } else { "contact" }, i);
                r.data_sealed = format!("sealed {i}").into_bytes();
                r
            })
            .collect();
        let theirs: Vec<RecordRow> = (0..7).map(|i| record(other, "company", i)).collect();
        for (w, rows) in [(ws, &mine), (other, &theirs)] {
            for batch in rows.chunks(400) {
                let ops = batch.iter().map(|r| put(r, vec![], vec![])).collect();
                store.crm_apply(w, &CrmBatch { ops }, 5).await.unwrap();
            }
        }
        // Every other record of mine (two of them twice), the other workspace's records and
        // ids of no record.
        let mut ids: Vec<RecordId> = mine.iter().step_by(2).map(|r| r.id).collect();
        ids.extend([mine[0].id, mine[600].id]);
        ids.extend(theirs.iter().map(|r| r.id));
        ids.extend((0..5).map(|_| RecordId::new()));
        let mut got = store.crm_records(ws, &ids).await.unwrap();
        got.sort_by_key(|r| r.id);
        let mut want: Vec<RecordRow> = mine.iter().step_by(2).cloned().collect();
        want.sort_by_key(|r| r.id);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (
                    g.id,
                    g.workspace_id,
                    &g.kind,
                    &g.data_sealed,
                    g.occurred_at,
                    g.version
                ),
                (
                    w.id,
                    w.workspace_id,
                    &w.kind,
                    &w.data_sealed,
                    w.occurred_at,
                    w.version
                )
            );
            assert_eq!(Some(g.clone()), store.crm_record(ws, g.id).await.unwrap());
        }
        // A few ids (SQLite reads those through its pool instead): the same rows.
        let few = [mine[2].id, mine[3].id, theirs[0].id, mine[2].id];
        let mut got = store.crm_records(ws, &few).await.unwrap();
        got.sort_by_key(|r| r.id);
        let mut want = vec![
            store.crm_record(ws, mine[2].id).await.unwrap().unwrap(),
            store.crm_record(ws, mine[3].id).await.unwrap().unwrap(),
        ];
        want.sort_by_key(|r| r.id);
        assert_eq!(got, want);
        assert!(store.crm_records(ws, &[]).await.unwrap().is_empty());
        assert!(store
            .crm_records(other, &[mine[0].id])
            .await
            .unwrap()
            .is_empty());
    }
);
