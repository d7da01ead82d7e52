//! The storage contract, run on SQLite and on PostgreSQL (see `meshwork-testkit`).

use meshwork_domain::{ApiKeyId, AuditId, InviteId, Role, UserId, WorkspaceId};
use meshwork_store::*;
use meshwork_testkit::{both_backends, TestDatabase};
use std::sync::Arc;

fn h(b: u8) -> Hash32 {
    [b; 32]
}

fn user(email: u8) -> UserRow {
    UserRow {
        id: UserId::new(),
        email_index: h(email),
        email_sealed: vec![1, 2, 3],
        name_sealed: vec![4],
        company_sealed: vec![],
        job_title_sealed: vec![],
        password_hash: "$argon2id$test".into(),
        email_verified: false,
        age_confirmed_at: 1,
        totp_secret_sealed: None,
        totp_enabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: 1,
        updated_at: 1,
    }
}

async fn workspace(store: &Arc<dyn Store>, owner: UserId) -> WorkspaceId {
    let id = WorkspaceId::new();
    store
        .create_workspace(
            &WorkspaceRow {
                id,
                name_sealed: vec![9],
                created_at: 1,
                last_seq: 0,
            },
            owner,
            1,
        )
        .await
        .unwrap();
    id
}

both_backends!(
    users_are_unique_by_email_index,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let a = user(1);
        store.create_user(&a).await.unwrap();
        let dup = user(1);
        assert!(matches!(
            store.create_user(&dup).await,
            Err(StoreError::Conflict("users.email"))
        ));
        let found = store.user_by_email_index(&h(1)).await.unwrap().unwrap();
        assert_eq!(found.id, a.id);
        assert_eq!(found.email_sealed, vec![1, 2, 3]);
        assert!(store.user_by_email_index(&h(2)).await.unwrap().is_none());
        let b = user(2);
        store.create_user(&b).await.unwrap();
        let taken = ProfileUpdate {
            email_index: h(1),
            email_sealed: vec![],
            name_sealed: vec![],
            company_sealed: vec![],
            job_title_sealed: vec![],
            email_verified: false,
        };
        assert!(matches!(
            store.update_profile(b.id, &taken, 2).await,
            Err(StoreError::Conflict(_))
        ));
        // The failed update changed nothing.
        assert_eq!(store.user(b.id).await.unwrap().unwrap().email_index, h(2));
    }
);

both_backends!(
    login_failures_lock_then_reset,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let u = user(1);
        store.create_user(&u).await.unwrap();
        for n in 1..=4 {
            assert_eq!(
                store.begin_login_attempt(u.id, 5, 1000, 10).await.unwrap(),
                Some(n)
            );
            assert_eq!(store.user(u.id).await.unwrap().unwrap().locked_until, None);
        }
        assert_eq!(
            store.begin_login_attempt(u.id, 5, 1000, 10).await.unwrap(),
            Some(5)
        );
        assert_eq!(
            store.user(u.id).await.unwrap().unwrap().locked_until,
            Some(1000)
        );
        // Locked: no attempt is granted (or counted) until the lock ends.
        assert_eq!(
            store.begin_login_attempt(u.id, 5, 2000, 999).await.unwrap(),
            None
        );
        assert_eq!(store.user(u.id).await.unwrap().unwrap().failed_logins, 5);
        // After it ends, counting starts again from one, and the lock is lifted.
        assert_eq!(
            store
                .begin_login_attempt(u.id, 5, 2000, 1000)
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(store.user(u.id).await.unwrap().unwrap().locked_until, None);
        assert_eq!(
            store
                .begin_login_attempt(u.id, 5, 3000, 1500)
                .await
                .unwrap(),
            Some(2)
        );
        // A refunded attempt (right password, second factor to come) does not count.
        store.refund_login_attempt(u.id, 5).await.unwrap();
        assert_eq!(store.user(u.id).await.unwrap().unwrap().failed_logins, 1);
        store.reset_login_failures(u.id).await.unwrap();
        let after = store.user(u.id).await.unwrap().unwrap();
        assert_eq!((after.failed_logins, after.locked_until), (0, None));
    }
);

both_backends!(
    change_feed_is_gap_free_and_ordered,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let owner = user(1);
        store.create_user(&owner).await.unwrap();
        let ws = workspace(&store, owner.id).await;
        let other = workspace(&store, owner.id).await;
        // Concurrent writers on one workspace still get consecutive sequence numbers.
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .rename_workspace(ws, &[i], 10 + i as i64)
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let changes = store.changes_since(ws, 0, 1000).await.unwrap();
        assert_eq!(changes.len(), 22, "create + owner membership + 20 renames");
        for (i, c) in changes.iter().enumerate() {
            assert_eq!(c.seq, i as i64 + 1);
            assert_eq!(c.workspace_id, ws);
        }
        assert_eq!(changes[0].entity, "workspace");
        assert_eq!(changes[1].entity, "membership");
        assert_eq!(store.workspace(ws).await.unwrap().unwrap().last_seq, 22);
        // Per-workspace numbering: the other workspace starts at 1.
        assert_eq!(store.changes_since(other, 0, 10).await.unwrap()[0].seq, 1);
        assert_eq!(store.changes_since(ws, 20, 10).await.unwrap().len(), 2);
    }
);

both_backends!(
    a_workspace_always_keeps_an_owner,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let (a, b) = (user(1), user(2));
        store.create_user(&a).await.unwrap();
        store.create_user(&b).await.unwrap();
        let ws = workspace(&store, a.id).await;
        assert_eq!(
            store
                .set_role(ws, a.id, Role::Owner, Role::Admin, 2)
                .await
                .unwrap(),
            RoleChange::LastOwner
        );
        assert_eq!(
            store.remove_member(ws, a.id, Role::Owner, 2).await.unwrap(),
            RoleChange::LastOwner
        );
        assert_eq!(
            store
                .set_role(ws, a.id, Role::Admin, Role::Viewer, 2)
                .await
                .unwrap(),
            RoleChange::Stale,
            "the expected role must match"
        );
        assert_eq!(store.role_of(ws, a.id).await.unwrap(), Some(Role::Owner));
        let seq_before = store.workspace(ws).await.unwrap().unwrap().last_seq;
        assert_eq!(seq_before, 2, "refused changes append nothing to the feed");
        // With a second owner, the first may step down.
        let invite = InviteRow {
            id: InviteId::new(),
            workspace_id: ws,
            token_hash: h(7),
            email_index: h(2),
            role: Role::Owner,
            invited_by: a.id,
            expires_at: 100,
        };
        store.create_invite(&invite, 2).await.unwrap();
        assert_eq!(
            store.accept_invite(&h(7), b.id, &h(2), 3).await.unwrap(),
            InviteOutcome::Joined {
                workspace: ws,
                role: Role::Owner
            }
        );
        assert_eq!(
            store
                .set_role(ws, a.id, Role::Owner, Role::Viewer, 4)
                .await
                .unwrap(),
            RoleChange::Applied
        );
        assert_eq!(store.role_of(ws, a.id).await.unwrap(), Some(Role::Viewer));
        assert_eq!(store.members(ws).await.unwrap().len(), 2);
        let mine = store.workspaces_of(b.id).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].1, Role::Owner);
    }
);

both_backends!(
    invites_are_single_use_and_bound_to_their_email,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let (a, b, c) = (user(1), user(2), user(3));
        for u in [&a, &b, &c] {
            store.create_user(u).await.unwrap();
        }
        let ws = workspace(&store, a.id).await;
        let invite = |token: u8, expires_at| InviteRow {
            id: InviteId::new(),
            workspace_id: ws,
            token_hash: h(token),
            email_index: h(2),
            role: Role::Member,
            invited_by: a.id,
            expires_at,
        };
        store.create_invite(&invite(10, 100), 1).await.unwrap();
        store.create_invite(&invite(11, 5), 1).await.unwrap();
        // Someone else's email cannot take it; an expired one is dead.
        assert_eq!(
            store.accept_invite(&h(10), c.id, &h(3), 2).await.unwrap(),
            InviteOutcome::Invalid
        );
        assert_eq!(
            store.accept_invite(&h(11), b.id, &h(2), 6).await.unwrap(),
            InviteOutcome::Invalid
        );
        // Concurrent acceptances: exactly one wins.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            let bid = b.id;
            tasks.push(tokio::spawn(async move {
                store.accept_invite(&h(10), bid, &h(2), 3).await.unwrap()
            }));
        }
        let mut joined = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), InviteOutcome::Joined { .. }) {
                joined += 1;
            }
        }
        assert_eq!(joined, 1);
        assert_eq!(store.role_of(ws, b.id).await.unwrap(), Some(Role::Member));
        assert_eq!(store.role_of(ws, c.id).await.unwrap(), None);
    }
);

both_backends!(
    security_keys_are_unique_per_credential_and_go_with_two_factor,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let (a, b) = (user(1), user(2));
        store.create_user(&a).await.unwrap();
        store.create_user(&b).await.unwrap();
        let key = |n: u128, owner: &UserRow, cred: u8| SecurityKeyRow {
            id: uuid::Uuid::from_u128(n),
            user_id: owner.id,
            credential_index: h(cred),
            key_sealed: vec![cred; 4],
            created_at: n as i64,
            last_used_at: None,
        };
        // Keys only beside TOTP.
        assert!(!store.add_security_key(&key(1, &a, 7), 10).await.unwrap());
        store.enable_totp(a.id, &[]).await.unwrap();
        store.enable_totp(b.id, &[]).await.unwrap();
        assert!(store.add_security_key(&key(1, &a, 7), 10).await.unwrap());
        assert!(store.add_security_key(&key(2, &a, 8), 10).await.unwrap());
        // One credential, one account: not again, not for another.
        assert!(!store.add_security_key(&key(3, &a, 7), 10).await.unwrap());
        assert!(!store.add_security_key(&key(4, &b, 7), 10).await.unwrap());
        // At most `max` keys.
        assert!(!store.add_security_key(&key(6, &a, 10), 2).await.unwrap());
        assert!(store.add_security_key(&key(5, &b, 9), 10).await.unwrap());
        let keys = store.security_keys(a.id).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.id.as_u128()).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // A use is saved over the credential read, once.
        assert!(store
            .security_key_used(a.id, keys[0].id, &[7; 4], b"new", 50)
            .await
            .unwrap());
        assert!(!store
            .security_key_used(a.id, keys[0].id, &[7; 4], b"newer", 51)
            .await
            .unwrap());
        // Another account's key is out of reach.
        assert!(!store
            .security_key_used(b.id, keys[1].id, &[8; 4], b"bad", 60)
            .await
            .unwrap());
        assert!(!store.delete_security_key(b.id, keys[1].id).await.unwrap());
        let keys = store.security_keys(a.id).await.unwrap();
        assert_eq!(
            (keys[0].key_sealed.as_slice(), keys[0].last_used_at),
            (&b"new"[..], Some(50))
        );
        assert_eq!(
            (keys[1].key_sealed.as_slice(), keys[1].last_used_at),
            (&[8u8; 4][..], None)
        );
        assert!(store.delete_security_key(a.id, keys[1].id).await.unwrap());
        assert!(!store.delete_security_key(a.id, keys[1].id).await.unwrap());
        // Two-factor authentication turned off takes the keys with it; only that account's.
        store.set_totp_secret(a.id, None).await.unwrap();
        assert!(store.security_keys(a.id).await.unwrap().is_empty());
        assert_eq!(store.security_keys(b.id).await.unwrap().len(), 1);
        // A token carries its sealed payload back once.
        store
            .create_token(&TokenRow {
                hash: h(11),
                kind: "webauthn_sign_in".into(),
                user_id: b.id,
                expires_at: 100,
                email_index: None,
                email_sealed: None,
                payload_sealed: Some(b"state".to_vec()),
            })
            .await
            .unwrap();
        let t = store
            .take_token("webauthn_sign_in", &h(11), 1)
            .await
            .unwrap();
        assert_eq!(t.and_then(|t| t.payload_sealed), Some(b"state".to_vec()));
        // Deleting the account deletes its keys.
        assert!(store.delete_user(b.id, 1).await.unwrap());
        assert!(store.security_keys(b.id).await.unwrap().is_empty());
    }
);

both_backends!(
    tokens_and_recovery_codes_are_taken_once,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let u = user(1);
        store.create_user(&u).await.unwrap();
        store
            .create_token(&TokenRow {
                hash: h(5),
                kind: "verify_email".into(),
                user_id: u.id,
                expires_at: 100,
                email_index: None,
                email_sealed: None,
                payload_sealed: None,
            })
            .await
            .unwrap();
        assert!(
            store
                .take_token("password_reset", &h(5), 1)
                .await
                .unwrap()
                .is_none(),
            "kind must match"
        );
        assert_eq!(
            store
                .take_token("verify_email", &h(5), 1)
                .await
                .unwrap()
                .map(|t| t.user_id),
            Some(u.id)
        );
        assert!(store
            .take_token("verify_email", &h(5), 1)
            .await
            .unwrap()
            .is_none());
        store
            .create_token(&TokenRow {
                hash: h(6),
                kind: "verify_email".into(),
                user_id: u.id,
                expires_at: 100,
                email_index: None,
                email_sealed: None,
                payload_sealed: None,
            })
            .await
            .unwrap();
        assert!(
            store
                .take_token("verify_email", &h(6), 100)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );

        store.set_totp_secret(u.id, Some(&[1, 2])).await.unwrap();
        store.enable_totp(u.id, &[h(1), h(2)]).await.unwrap();
        assert!(store.user(u.id).await.unwrap().unwrap().totp_enabled);
        assert!(store.take_recovery_code(u.id, &h(1)).await.unwrap());
        assert!(!store.take_recovery_code(u.id, &h(1)).await.unwrap());
        assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 1);
        store.set_totp_secret(u.id, None).await.unwrap();
        let off = store.user(u.id).await.unwrap().unwrap();
        assert!(!off.totp_enabled && off.totp_secret_sealed.is_none());
        assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 0);

        assert!(store.remember_device(u.id, &h(8), 1).await.unwrap());
        assert!(!store.remember_device(u.id, &h(8), 2).await.unwrap());
    }
);

both_backends!(
    api_keys_are_found_by_hash_and_revoked_per_workspace,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let u = user(1);
        store.create_user(&u).await.unwrap();
        let ws = workspace(&store, u.id).await;
        let other = workspace(&store, u.id).await;
        let key = ApiKeyRow {
            id: ApiKeyId::new(),
            workspace_id: ws,
            key_hash: h(42),
            prefix: "mwk_abcd".into(),
            name_sealed: vec![1],
            role: Role::Viewer,
            created_by: u.id,
            created_at: 1,
            expires_at: Some(50),
            revoked_at: None,
            last_used_at: None,
            last_used_from_sealed: None,
        };
        store.create_api_key(&key, 1).await.unwrap();
        let (found, creator_role) = store.api_key_by_hash(&h(42)).await.unwrap().unwrap();
        assert_eq!(
            (found.id, found.role, found.expires_at),
            (key.id, Role::Viewer, Some(50))
        );
        assert_eq!(
            creator_role,
            Some(Role::Owner),
            "the creator's role comes with the key"
        );
        assert!(
            !store.revoke_api_key(other, key.id, 2).await.unwrap(),
            "another workspace cannot revoke it"
        );
        assert!(store.revoke_api_key(ws, key.id, 3).await.unwrap());
        assert_eq!(
            store
                .api_key_by_hash(&h(42))
                .await
                .unwrap()
                .unwrap()
                .0
                .revoked_at,
            Some(3)
        );
        assert_eq!(store.api_keys(ws).await.unwrap().len(), 1);
        assert!(store.api_keys(other).await.unwrap().is_empty());
    }
);

both_backends!(
    audit_pages_newest_first_by_scope,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let u = user(1);
        store.create_user(&u).await.unwrap();
        let ws = workspace(&store, u.id).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = AuditId::new();
            ids.push(id);
            store
                .append_audit(&AuditRow {
                    id,
                    workspace_id: Some(ws),
                    actor: Some(u.id),
                    subject: if i == 0 { Some(u.id) } else { None },
                    kind: format!("k{i}"),
                    details_sealed: vec![i],
                    at: i as i64,
                })
                .await
                .unwrap();
        }
        let page = store
            .audit(AuditScope::Workspace(ws), None, 3)
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["k4", "k3", "k2"]
        );
        let next = store
            .audit(AuditScope::Workspace(ws), Some(page[2].id), 3)
            .await
            .unwrap();
        assert_eq!(
            next.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["k1", "k0"]
        );
        assert_eq!(
            store
                .audit(AuditScope::User(u.id), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

both_backends!(
    outbox_keeps_mail_until_sent,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        for i in 0..3 {
            store
                .enqueue_mail(&MailRow {
                    id: uuid::Uuid::now_v7(),
                    to_sealed: vec![i],
                    subject_sealed: vec![],
                    body_sealed: vec![],
                    kind: "verify_email".into(),
                    created_at: i as i64,
                })
                .await
                .unwrap();
        }
        let mail = store.unsent_mail(10).await.unwrap();
        assert_eq!(
            mail.iter().map(|m| m.to_sealed[0]).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }
);

both_backends!(
    concurrent_demotions_never_leave_a_workspace_without_an_owner,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        for round in 0..10u8 {
            let (a, b) = (user(round * 2 + 1), user(round * 2 + 2));
            store.create_user(&a).await.unwrap();
            store.create_user(&b).await.unwrap();
            let ws = workspace(&store, a.id).await;
            let invite = InviteRow {
                id: InviteId::new(),
                workspace_id: ws,
                token_hash: h(200 + round),
                email_index: b.email_index,
                role: Role::Owner,
                invited_by: a.id,
                expires_at: 100,
            };
            store.create_invite(&invite, 1).await.unwrap();
            store
                .accept_invite(&h(200 + round), b.id, &b.email_index, 2)
                .await
                .unwrap();
            // Each owner demotes the other at the same moment.
            let (s1, s2) = (store.clone(), store.clone());
            let (r1, r2) = tokio::join!(
                tokio::spawn(async move {
                    s1.set_role(ws, a.id, Role::Owner, Role::Member, 3)
                        .await
                        .unwrap()
                }),
                tokio::spawn(async move {
                    s2.set_role(ws, b.id, Role::Owner, Role::Member, 3)
                        .await
                        .unwrap()
                }),
            );
            let outcomes = [r1.unwrap(), r2.unwrap()];
            assert!(outcomes.contains(&RoleChange::LastOwner), "{outcomes:?}");
            let owners = store
                .members(ws)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.role == Role::Owner)
                .count();
            assert_eq!(owners, 1);
        }
    }
);

both_backends!(
    parallel_sign_in_attempts_cannot_pass_the_lock,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let u = user(9);
        store.create_user(&u).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.begin_login_attempt(u.id, 5, 1000, 10).await.unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                granted += 1;
            }
        }
        assert_eq!(
            granted, 5,
            "exactly the threshold of attempts get through, however many run at once"
        );
    }
);

fn queued(kind: &str, run_at: i64) -> QueuedJobRow {
    QueuedJobRow {
        id: uuid::Uuid::now_v7(),
        kind: kind.into(),
        workspace_id: None,
        payload: b"{}".to_vec(),
        payload_sealed: false,
        state: "queued".into(),
        attempts: 0,
        max_attempts: 2,
        run_at,
        lease_holder: None,
        lease_until: None,
        error_sealed: None,
        unique_key: None,
        created_at: 1,
        updated_at: 1,
    }
}

both_backends!(
    the_job_queue_leases_retries_and_fails_jobs,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let due = queued("a", 100);
        let later = queued("a", 10_000);
        let other_kind = queued("b", 100);
        for j in [&due, &later, &other_kind] {
            assert!(store.enqueue_job(j).await.unwrap());
        }
        // Only due jobs of the kinds asked for.
        let got = store
            .claim_jobs("r1", &["a"], 1_000, 5_000, 10)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, due.id);
        assert_eq!(got[0].state, "running");
        assert_eq!(got[0].attempts, 1);
        assert_eq!(got[0].lease_holder.as_deref(), Some("r1"));
        // Held: nobody else gets it until the lease runs out, then it is taken over.
        assert!(store
            .claim_jobs("r2", &["a"], 4_999, 9_000, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store.renew_job_lease(due.id, "r1", 6_000).await.unwrap());
        assert!(!store.renew_job_lease(due.id, "r2", 9_000).await.unwrap());
        let taken = store
            .claim_jobs("r2", &["a"], 6_001, 9_000, 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].attempts, 2);
        // The old holder can no longer record anything.
        assert!(!store
            .end_job_run(due.id, "r1", &JobOutcome::Done, 6_002)
            .await
            .unwrap());
        // A temporary failure with the attempts used up fails it, keeping the reason.
        assert!(store
            .end_job_run(due.id, "r2", &JobOutcome::RetryAt(7_000, vec![7]), 6_003)
            .await
            .unwrap());
        let j = store.queued_job(due.id).await.unwrap().unwrap();
        assert_eq!(j.state, "failed");
        assert_eq!(j.error_sealed, Some(vec![7]));
        assert_eq!(j.lease_holder, None);
        // An operator retries it: queued again, attempts reset; a released run does not count.
        assert!(store.retry_job(due.id, 7_000).await.unwrap());
        assert!(!store.retry_job(due.id, 7_000).await.unwrap());
        let j = store
            .claim_jobs("r3", &["a"], 7_000, 9_000, 1)
            .await
            .unwrap();
        assert_eq!(j[0].attempts, 1);
        assert!(store
            .end_job_run(due.id, "r3", &JobOutcome::Released, 7_001)
            .await
            .unwrap());
        let j = store.queued_job(due.id).await.unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.attempts), ("queued", 0));
        // A temporary failure with attempts left is queued for later.
        store
            .claim_jobs("r3", &["a"], 7_002, 9_000, 1)
            .await
            .unwrap();
        store
            .end_job_run(due.id, "r3", &JobOutcome::RetryAt(8_000, vec![1]), 7_003)
            .await
            .unwrap();
        let j = store.queued_job(due.id).await.unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.run_at), ("queued", 8_000));
        assert!(store
            .claim_jobs("r3", &["a"], 7_999, 9_000, 1)
            .await
            .unwrap()
            .is_empty());
        // Cancel: a running job's holder loses it at its next renewal.
        let j = store
            .claim_jobs("r4", &["a"], 8_000, 9_000, 1)
            .await
            .unwrap();
        assert_eq!(j.len(), 1);
        assert!(store.cancel_job(due.id, 8_001).await.unwrap());
        assert!(!store.renew_job_lease(due.id, "r4", 9_500).await.unwrap());
        assert_eq!(
            store.queued_job(due.id).await.unwrap().unwrap().state,
            "cancelled"
        );
        // Lists, newest first, by state; pruning removes only ended jobs older than asked.
        let failed_or_cancelled = store
            .queued_jobs(None, Some("cancelled"), 10)
            .await
            .unwrap();
        assert_eq!(failed_or_cancelled.len(), 1);
        assert_eq!(store.queued_jobs(None, None, 10).await.unwrap().len(), 3);
        assert_eq!(store.prune_jobs(8_002).await.unwrap(), 1);
        assert_eq!(store.queued_jobs(None, None, 10).await.unwrap().len(), 2);
        // A unique key inserts once.
        let mut p1 = queued("p", 1);
        p1.unique_key = Some("p@1".into());
        let mut p2 = queued("p", 1);
        p2.unique_key = Some("p@1".into());
        assert!(store.enqueue_job(&p1).await.unwrap());
        assert!(!store.enqueue_job(&p2).await.unwrap());
        // Expiring every lease (a single-server start-up) makes held jobs claimable.
        store
            .claim_jobs("r5", &["p"], 10, 1_000_000, 1)
            .await
            .unwrap();
        assert_eq!(store.expire_job_leases(20).await.unwrap(), 1);
        assert_eq!(
            store
                .claim_jobs("r6", &["p"], 30, 1_000, 1)
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

both_backends!(
    concurrent_claims_never_take_a_job_twice,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let mut ids = Vec::new();
        for i in 0..200 {
            let j = queued("c", i);
            ids.push(j.id);
            store.enqueue_job(&j).await.unwrap();
        }
        let mut tasks = Vec::new();
        for r in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let holder = format!("runner-{r}");
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_jobs(&holder, &["c"], 1_000, 1_000_000, 7)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(all, expected, "each job claimed exactly once");
    }
);

both_backends!(
    saved_views_are_seen_by_their_author_or_when_shared,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let (a, b) = (user(41), user(42));
        store.create_user(&a).await.unwrap();
        store.create_user(&b).await.unwrap();
        let ws = workspace(&store, a.id).await;
        let view = |id: &str, by: UserId, shared: bool, kind: &str, at: i64| SavedViewRow {
            id: id.into(),
            workspace_id: ws,
            user_id: by,
            shared,
            kind: kind.into(),
            data_sealed: vec![7, at as u8],
            created_at: at,
        };
        store
            .saved_view_put(&view("mine", a.id, false, "contact", 1))
            .await
            .unwrap();
        store
            .saved_view_put(&view("ours", b.id, true, "contact", 2))
            .await
            .unwrap();
        store
            .saved_view_put(&view("theirs", b.id, false, "contact", 3))
            .await
            .unwrap();
        store
            .saved_view_put(&view("deals", a.id, true, "deal", 4))
            .await
            .unwrap();
        let ids = |rows: Vec<SavedViewRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.saved_views(ws, "contact", a.id).await.unwrap()),
            ["mine", "ours"]
        );
        assert_eq!(
            ids(store.saved_views(ws, "contact", b.id).await.unwrap()),
            ["ours", "theirs"]
        );
        assert_eq!(
            ids(store.saved_views(ws, "deal", b.id).await.unwrap()),
            ["deals"]
        );
        let read = store.saved_views(ws, "contact", a.id).await.unwrap();
        assert_eq!(read[1], view("ours", b.id, true, "contact", 2));
        // Deleted by id within its workspace only.
        let other = workspace(&store, a.id).await;
        assert!(!store.saved_view_delete(other, "mine").await.unwrap());
        assert!(store.saved_view_delete(ws, "mine").await.unwrap());
        assert!(!store.saved_view_delete(ws, "mine").await.unwrap());
        // They go with their workspace.
        assert!(store.delete_workspace(ws).await.unwrap());
        assert!(store
            .saved_views(ws, "contact", b.id)
            .await
            .unwrap()
            .is_empty());
    }
);

both_backends!(
    a_connector_has_one_running_sync_at_a_time_and_disconnecting_removes_it_all_at_once,
    |db: TestDatabase| async move {
        let store = db.open_store().await;
        let owner = user(40);
        store.create_user(&owner).await.unwrap();
        let ws = workspace(&store, owner.id).await;
        let c = ConnectorRow {
            id: "c1".into(),
            workspace_id: ws,
            source: "dir".into(),
            kind: "ldap".into(),
            settings_sealed: vec![1],
            paused: false,
            every_seconds: 300,
            next_sync_at: 1,
            created_at: 1,
            updated_at: 1,
        };
        store.connector_create(&c).await.unwrap();
        let run = |id: &str, state: &str| ConnectorRunRow {
            id: id.into(),
            workspace_id: ws,
            connector_id: "c1".into(),
            trigger: "manual".into(),
            state: state.into(),
            started_at: 1,
            finished_at: None,
            counts: "{}".into(),
            report_sealed: None,
        };
        store
            .connector_run_put(&run("r1", "running"))
            .await
            .unwrap();
        // Progress on the same run is fine; a second running run is refused.
        store
            .connector_run_put(&run("r1", "running"))
            .await
            .unwrap();
        assert!(matches!(
            store.connector_run_put(&run("r2", "running")).await,
            Err(StoreError::Conflict("connector_runs.running"))
        ));
        store.connector_run_put(&run("r1", "done")).await.unwrap();
        store
            .connector_run_put(&run("r2", "running"))
            .await
            .unwrap();

        store
            .source_put_principals(
                ws,
                "dir",
                &[SourcePrincipalRow {
                    principal: "u:1".into(),
                    email_index: None,
                }],
                2,
            )
            .await
            .unwrap();
        store
            .connector_record_put(&ConnectorRecordRow {
                workspace_id: ws,
                connector_id: "c1".into(),
                item: "i1".into(),
                record_id: meshwork_domain::RecordId::new(),
                created: true,
                fingerprint: "f".into(),
                version: 1,
                state_sealed: vec![2],
                updated_at: 2,
            })
            .await
            .unwrap();
        assert_eq!(store.connector_delete(ws, "c1", 3).await.unwrap(), Some(0));
        assert!(store.connector(ws, "c1").await.unwrap().is_none());
        assert!(store.connector_runs(ws, "c1", 10).await.unwrap().is_empty());
        assert!(store.connector_records(ws, "c1").await.unwrap().is_empty());
        assert!(store
            .source_principal_rows(ws, "dir")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.connector_delete(ws, "c1", 4).await.unwrap(), None);
    }
);
