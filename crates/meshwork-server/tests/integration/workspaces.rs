//! Workspaces, roles, invitations, API keys, the audit log and the change feed.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn promise_cl13_api_keys_are_shown_once_and_stored_only_hashed(s: &mut TestServer) {
    let owner = s.signup("Olu", "olu@example.com").await;
    let ws = s.create_workspace(&owner, "Keys").await;
    let (status, created) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&owner),
            Some(json!({"name": "ci", "role": "viewer", "expires_in_days": 30, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mwk_") && secret.len() > 40);
    // Listing never shows the secret again.
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&owner),
            None,
        )
        .await;
    assert!(!list.to_string().contains(&secret));
    assert_eq!(list[0]["prefix"], &secret[..12]);
    // Only the SHA-256 of the key is stored; the key itself appears nowhere on disk.
    let row = s
        .state()
        .store
        .api_keys(ws.parse().unwrap())
        .await
        .unwrap()
        .remove(0);
    use sha2::Digest;
    assert_eq!(
        row.key_hash,
        <[u8; 32]>::from(sha2::Sha256::digest(secret.as_bytes()))
    );
    assert_absent(s, &[&secret, &secret[4..]]).await;
    // The key works as a bearer token, for its role only.
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(&secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "viewer");
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(&secret),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A database row alone does not give a usable key: the hash is not accepted as a key.
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(&hex::encode(row.key_hash)),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
    // Revoked keys stop at once; the revocation is audited.
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/api-keys/{key_id}"),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(&secret),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("api_key_revoked"))
    );
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit"),
            &As::User(&owner),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    assert!(
        kinds.contains(&"api_key.created") && kinds.contains(&"api_key.revoked"),
        "{kinds:?}"
    );
    assert!(!audit.to_string().contains(&secret));
}
server_test!(promise_cl13_api_keys_are_shown_once_and_stored_only_hashed);

async fn expired_keys_and_bad_expiry_are_refused(s: &mut TestServer) {
    let owner = s.signup("Ex", "ex@example.com").await;
    let ws = s.create_workspace(&owner, "Exp").await;
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&owner),
            Some(
                json!({"name": "k", "role": "viewer", "expires_in_days": 0, "password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("expires_in_days"));
    // A key whose expiry has passed (written directly, as time passing would).
    let secret = "mwk_expired-key-for-test-0000000000000000000";
    use sha2::Digest;
    let row = meshwork_store::ApiKeyRow {
        id: meshwork_domain::ApiKeyId::new(),
        workspace_id: ws.parse().unwrap(),
        key_hash: sha2::Sha256::digest(secret.as_bytes()).into(),
        prefix: secret[..12].into(),
        name_sealed: s
            .state()
            .seal_workspace(ws.parse().unwrap(), "x", "name", "old")
            .unwrap(),
        role: meshwork_domain::Role::Viewer,
        created_by: owner.user_id.parse().unwrap(),
        created_at: 1,
        expires_at: Some(2),
        revoked_at: None,
        last_used_at: None,
        last_used_from_sealed: None,
    };
    s.state().store.create_api_key(&row, 1).await.unwrap();
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(secret),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("api_key_expired"))
    );
}
server_test!(expired_keys_and_bad_expiry_are_refused);

async fn roles_invitations_and_the_last_owner(s: &mut TestServer) {
    let owner = s.signup("Ow", "ow@example.com").await;
    let admin = s.signup("Ad", "ad@example.com").await;
    let member = s.signup("Me", "me@example.com").await;
    let ws = s.create_workspace(&owner, "Team").await;
    s.add_member(&owner, &ws, &admin, "admin").await;
    // Admins invite, but cannot grant ownership.
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&admin),
            Some(json!({"email": "me@example.com", "role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.add_member(&admin, &ws, &member, "member").await;
    // An invitation is bound to its email address.
    let (_, inv) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&owner),
            Some(json!({"email": "someone@example.com", "role": "viewer"})),
        )
        .await;
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/invites/accept",
            &As::User(&member),
            Some(json!({"token": inv["accept_token"]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_token"))
    );
    // Invitations are emailed.
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail.iter().any(|m| m.kind == "invite"
        && m.to == "someone@example.com"
        && m.subject.contains("Team")));

    let (_, members) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/members"),
            &As::User(&member),
            None,
        )
        .await;
    assert_eq!(members.as_array().unwrap().len(), 3);
    // Admins cannot demote owners; the last owner cannot leave ownership.
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", owner.user_id),
            &As::User(&admin),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", owner.user_id),
            &As::User(&owner),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_owner"))
    );
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", member.user_id),
            &As::User(&owner),
            Some(json!({"role": "boss"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("role"));
    assert_eq!(
        s.status(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", member.user_id),
            &As::User(&owner),
            Some(json!({"role": "viewer"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // An API key never outranks its creator: demoting the creator demotes the key.
    let admin_key = s.create_key(&admin, &ws, "admin").await;
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::Key(&admin_key),
            None
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        s.status(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", admin.user_id),
            &As::User(&owner),
            Some(json!({"role": "viewer"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::Key(&admin_key),
            None
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // Removing the creator kills the key for that workspace.
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/members/{}", admin.user_id),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::Key(&admin_key),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::User(&admin),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );

    // Role changes are audited, and the change feed recorded every write in order.
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit?limit=200"),
            &As::User(&owner),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    for k in [
        "workspace.created",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.removed",
        "api_key.created",
    ] {
        assert!(kinds.contains(&k), "audit lacks {k}: {kinds:?}");
    }
    let (_, changes) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/changes"),
            &As::User(&owner),
            None,
        )
        .await;
    let seqs: Vec<i64> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert!(seqs.len() >= 10, "{changes}");
    let (_, page) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/changes?after=3&limit=2"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(
        page.as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let (_, w) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(w["last_seq"].as_i64().unwrap(), *seqs.last().unwrap());
    // The member sees that their role changed, but not the acting owner's address or browser.
    let (_, mine) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&member),
            None,
        )
        .await;
    let changed = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "member.role_changed")
        .expect("role change listed");
    assert!(
        changed["details"].get("ip").is_none() && changed["details"].get("user_agent").is_none(),
        "{changed}"
    );
    assert_eq!(changed["details"]["to"], "viewer");
    // The owner's workspace log keeps them, for security review.
    let owner_view = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "member.role_changed")
        .unwrap();
    assert_eq!(owner_view["details"]["ip"], "127.0.0.1");
}
server_test!(roles_invitations_and_the_last_owner);

async fn workspaces_are_created_listed_and_renamed(s: &mut TestServer) {
    let me = s.signup("Wu", "wu@example.com").await;
    let a = s.create_workspace(&me, "Alpha").await;
    let b = s.create_workspace(&me, "Beta").await;
    let (_, list) = s
        .call(Method::GET, "/api/v1/workspaces", &As::User(&me), None)
        .await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alpha", "Beta"]);
    let (status, w) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{a}"),
            &As::User(&me),
            Some(json!({"name": "Alpha 2"})),
        )
        .await;
    assert_eq!(
        (status, w["name"].as_str()),
        (StatusCode::OK, Some("Alpha 2"))
    );
    let (_, w) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{b}"),
            &As::User(&me),
            None,
        )
        .await;
    assert_eq!(w["name"], "Beta");
    // Each workspace has a key of its own in the keyring, apart from the database.
    let ring = s.state().keyring.dir().to_path_buf();
    assert!(
        ring.join(format!("workspaces/{a}.key")).exists()
            && ring.join(format!("workspaces/{b}.key")).exists()
    );
}
server_test!(workspaces_are_created_listed_and_renamed);

async fn promise_cl12_deleting_a_workspace_removes_its_data_and_shreds_its_key(s: &mut TestServer) {
    let owner = s.signup("Del", "del@example.com").await;
    let admin = s.signup("Adm", "adm@example.com").await;
    let ws = s.create_workspace(&owner, "Doomed").await;
    let keep = s.create_workspace(&owner, "Kept").await;
    s.add_member(&owner, &ws, &admin, "admin").await;
    let key = s.create_key(&owner, &ws, "owner").await;
    let ws_id: meshwork_domain::WorkspaceId = ws.parse().unwrap();
    // A "backup" taken before deletion: the sealed name as it was stored.
    let backup = s.state().store.workspace(ws_id).await.unwrap().unwrap();

    // Only owners may delete, and only with the exact name as confirmation.
    let path = format!("/api/v1/workspaces/{ws}");
    assert_eq!(
        s.status(
            Method::DELETE,
            &path,
            &As::User(&admin),
            Some(json!({"confirm": "Doomed"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let (status, body) = s
        .call(
            Method::DELETE,
            &path,
            &As::User(&owner),
            Some(json!({"confirm": ""})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("confirmation_required")
        )
    );
    let (status, _) = s
        .call(
            Method::DELETE,
            &path,
            &As::User(&owner),
            Some(json!({"confirm": "doomed"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&owner), None).await,
        StatusCode::OK,
        "nothing was deleted yet"
    );

    // A person types their password again (ASVS 3.7.1): a stolen session alone deletes nothing.
    for (password, code) in [
        (None, "invalid_credentials"),
        (Some("not the password"), "invalid_credentials"),
    ] {
        let (status, body) = s
            .call(
                Method::DELETE,
                &path,
                &As::User(&owner),
                Some(json!({"confirm": "Doomed", "password": password})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{body}"
        );
    }
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&owner), None).await,
        StatusCode::OK,
        "nothing was deleted yet"
    );
    assert_eq!(
        s.status(
            Method::DELETE,
            &path,
            &As::User(&owner),
            Some(json!({"confirm": "Doomed", "password": PASSWORD}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // Gone for everyone, by session and by key; the other workspace is untouched.
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&owner), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&admin), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.status(Method::GET, &path, &As::Key(&key), None).await,
        StatusCode::UNAUTHORIZED
    );
    let (_, list) = s
        .call(Method::GET, "/api/v1/workspaces", &As::User(&owner), None)
        .await;
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [keep.as_str()]
    );
    // No row of it is left in the primary store.
    let store = &s.state().store;
    assert!(store.workspace(ws_id).await.unwrap().is_none());
    assert!(store.members(ws_id).await.unwrap().is_empty());
    assert!(store.api_keys(ws_id).await.unwrap().is_empty());
    assert!(store.changes_since(ws_id, 0, 100).await.unwrap().is_empty());
    // Its key is destroyed: the backup copy can no longer be opened by anyone.
    assert!(!s
        .state()
        .keyring
        .dir()
        .join(format!("workspaces/{ws}.key"))
        .exists());
    assert!(s.state().keyring.workspace_key(ws_id.as_uuid()).is_err());
    assert!(s
        .state()
        .open_workspace(ws_id, &ws, "name", &backup.name_sealed)
        .is_err());
    // The deletion is audited (the account-level trail survives the workspace).
    let rows = store
        .audit(meshwork_store::AuditScope::Workspace(ws_id), None, 10)
        .await
        .unwrap();
    assert_eq!(rows[0].kind, "workspace.deleted");
}
server_test!(promise_cl12_deleting_a_workspace_removes_its_data_and_shreds_its_key);

async fn invitations_need_a_verified_email_a_current_inviter_and_can_be_withdrawn(
    s: &mut TestServer,
) {
    let s: &TestServer = s;
    let owner = s.signup("Io", "io@example.com").await;
    let admin = s.signup("Ia", "ia@example.com").await;
    let guest = s.signup("Ig", "ig@example.com").await;
    let ws = s.create_workspace(&owner, "Inv").await;
    s.add_member(&owner, &ws, &admin, "admin").await;
    let ws_ref = &ws;
    let invite = |by: Session, role: &'static str| {
        let ws = ws_ref.clone();
        async move {
            let (status, body) = s
                .call(
                    Method::POST,
                    &format!("/api/v1/workspaces/{ws}/invites"),
                    &As::User(&by),
                    Some(json!({"email": "ig@example.com", "role": role})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (
                body["id"].as_str().unwrap().to_string(),
                body["accept_token"].as_str().unwrap().to_string(),
            )
        }
    };
    let g = &guest;
    let accept = |token: String| async move {
        s.call(
            Method::POST,
            "/api/v1/invites/accept",
            &As::User(g),
            Some(json!({"token": token})),
        )
        .await
    };

    // An unverified address cannot take an invitation addressed to it.
    let (_, t1) = invite(owner.clone(), "viewer").await;
    let (status, body) = accept(t1.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_not_verified"))
    );
    s.verify_email(&guest).await;

    // A withdrawn invitation is dead.
    let (id2, t2) = invite(admin.clone(), "admin").await;
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/invites/{id2}"),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/invites/{id2}"),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(accept(t2).await.1["code"], "invalid_token");

    // An inviter who was demoted grants no more than they now hold; one who left grants nothing.
    let (_, t3) = invite(admin.clone(), "admin").await;
    let (_, t4) = invite(admin.clone(), "member").await;
    assert_eq!(
        s.status(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/members/{}", admin.user_id),
            &As::User(&owner),
            Some(json!({"role": "viewer"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = accept(t3).await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("viewer")),
        "{body}"
    );
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/members/{}", guest.user_id),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/members/{}", admin.user_id),
            &As::User(&owner),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(accept(t4).await.1["code"], "invalid_token");
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::User(&guest),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    // The first invitation, from a current owner, still works.
    let (status, body) = accept(t1).await;
    assert_eq!(
        (status, body["role"].as_str()),
        (StatusCode::OK, Some("viewer")),
        "{body}"
    );
}
server_test!(invitations_need_a_verified_email_a_current_inviter_and_can_be_withdrawn);
