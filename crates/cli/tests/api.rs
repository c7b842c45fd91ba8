//! The daemon's API against the real `palisade serve` on a temporary Unix
//! socket in a throwaway lab: roles and tenant boundaries, forged, expired
//! and revoked tokens, lockout, rate limiting, bad bodies, TOTP, the audit
//! chain, TLS, 100 concurrent creations, and the CLI beside the daemon.

mod common;
#[path = "api/harness.rs"]
mod harness;

use harness::{raw, Daemon, ADMIN_PASSWORD, PASSWORD};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CONFIG: &str = "[security]\nlockout_threshold = 3\nlockout_minutes = 5\n";

fn create(d: &Daemon, token: &str, name: &str, tenant: &str) -> harness::Resp {
    d.req(
        "POST",
        "/sandboxes",
        Some(token),
        Some(json!({"name": name, "tenant": tenant, "kind": "tap"})),
    )
}

#[test]
fn roles_and_tenant_boundaries() {
    let Some(d) = Daemon::start("api roles_and_tenant_boundaries", CONFIG) else {
        return;
    };
    let admin = d.admin();
    d.add_user(&admin, "op-a", "operator", Some("acme"));
    d.add_user(&admin, "view-a", "viewer", Some("acme"));
    d.add_user(&admin, "op", "operator", None);
    d.add_user(&admin, "viewer", "viewer", None);
    let op_a = d.login("op-a", PASSWORD);
    let view_a = d.login("view-a", PASSWORD);
    let op = d.login("op", PASSWORD);
    let viewer = d.login("viewer", PASSWORD);
    let (a1, b1) = (d.env.name("a1"), d.env.name("b1"));

    // A scoped operator creates in its tenant (the tenant may be left out)...
    let r = d.req(
        "POST",
        "/sandboxes",
        Some(&op_a),
        Some(json!({"name": a1, "kind": "tap"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["tenant"], "acme");
    // ...and another tenant does not exist for it.
    let r = create(&d, &op_a, &d.env.name("x"), "globex");
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "not_found"),
        "{}",
        r.text()
    );
    assert_eq!(create(&d, &op, &b1, "globex").status, 201);

    for (method, path) in [
        ("GET", format!("/sandboxes/{b1}")),
        ("DELETE", format!("/sandboxes/{b1}")),
        ("GET", format!("/sandboxes/{b1}/exposures")),
        ("GET", "/tenants/globex".to_string()),
        ("GET", "/tenants/globex/rules".to_string()),
    ] {
        let r = d.req(method, &path, Some(&op_a), None);
        assert_eq!(r.status, 404, "{method} {path} as op-a: {}", r.text());
        assert!(
            !r.text().contains("globex") || path.contains("globex"),
            "{}",
            r.text()
        );
    }
    let r = d.req(
        "PATCH",
        &format!("/sandboxes/{b1}"),
        Some(&op_a),
        Some(json!({"internet": false})),
    );
    assert_eq!(r.status, 404);
    let r = d.req("POST", "/verify", Some(&op_a), Some(json!({"sandbox": b1})));
    assert_eq!(r.status, 404, "{}", r.text());
    // The sandbox of the other tenant is untouched.
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{b1}"), Some(&op), None)
            .status,
        200
    );

    // Lists are cut to the scope; asking for another tenant gives nothing.
    let names = |token: &str, q: &str| -> Vec<String> {
        let r = d.req("GET", &format!("/sandboxes{q}"), Some(token), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&op_a, ""), vec![a1.clone()]);
    assert_eq!(names(&op_a, "?tenant=globex"), Vec::<String>::new());
    assert_eq!(names(&viewer, "").len(), 2);
    let tenants = d.req("GET", "/tenants", Some(&view_a), None).json();
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");

    // A viewer reads and changes nothing.
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{a1}"), Some(&view_a), None)
            .status,
        200
    );
    let r = create(&d, &viewer, &d.env.name("v"), "acme");
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = d.req("DELETE", &format!("/sandboxes/{a1}"), Some(&view_a), None);
    assert_eq!(r.status, 403);
    assert_eq!(d.req("POST", "/verify", Some(&viewer), None).status, 403);

    // Users and the policy are the admin's; the host's status is unscoped.
    assert_eq!(d.req("GET", "/users", Some(&op), None).status, 403);
    let r = d.req(
        "POST",
        "/users",
        Some(&op),
        Some(json!({"name": "mallory", "password": PASSWORD, "role": "admin"})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(d.req("GET", "/status", Some(&op_a), None).status, 403);
    assert_eq!(d.req("GET", "/status", Some(&viewer), None).status, 200);
    let policy = d.req("GET", "/security-policy", Some(&admin), None).json();
    assert_eq!(
        d.req("PUT", "/security-policy", Some(&op), Some(policy.clone()))
            .status,
        403
    );
    assert_eq!(
        d.req("PUT", "/security-policy", Some(&admin), Some(policy))
            .status,
        200
    );
    // The compliance report and the chain check are not a tenant's.
    assert_eq!(
        d.req(
            "GET",
            "/compliance/report?framework=soc2",
            Some(&op_a),
            None
        )
        .status,
        403
    );
    assert_eq!(
        d.req("GET", "/audit/verify", Some(&view_a), None).status,
        403
    );

    // Operators manage rules of their tenant only; the always-denied ranges
    // stay closed.
    let rule = json!({"action": "deny", "proto": "tcp", "ports": "25", "cidr": "203.0.113.0/24"});
    let r = d.req(
        "POST",
        "/tenants/acme/rules",
        Some(&op_a),
        Some(rule.clone()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        d.req("POST", "/tenants/globex/rules", Some(&op_a), Some(rule))
            .status,
        404
    );
    let r = d.req(
        "POST",
        "/tenants/acme/rules",
        Some(&op_a),
        Some(json!({"action": "allow", "proto": "tcp", "cidr": "169.254.169.254/32"})),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("169.254"), "{}", r.text());

    // Scoped users see only their tenant's audit records; denials are there.
    // Refusals are recorded: another tenant's objects as the 404s they
    // answered (like missing ones), the role's limits as denials.
    let hidden: Vec<Value> = d
        .audit(&admin, "actor=op-a")
        .into_iter()
        .filter(|r| r["details"]["status"] == 404)
        .collect();
    assert!(hidden.len() >= 9, "404s of op-a not recorded: {hidden:?}");
    assert!(hidden
        .iter()
        .all(|r| r["tenant"] == "acme" || r["tenant"] == "globex"));
    let denied = d.audit(&admin, "outcome=denied&actor=view-a");
    assert!(
        denied.len() >= 2,
        "denials of view-a not recorded: {denied:?}"
    );
    let mine = d.audit(&op_a, "");
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|r| r["tenant"] == "acme"), "{mine:?}");
    assert!(d.audit(&op_a, "tenant=globex").is_empty());

    // The verify check of the whole host agrees with the store.
    let r = d.req("POST", "/verify", Some(&op), None);
    assert_eq!(r.json()["ok"], true, "{}", r.text());
}

fn jwt_key(d: &Daemon) -> Vec<u8> {
    std::fs::read(d.state_dir().join("jwt.key")).unwrap()
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn forged_expired_and_revoked_tokens() {
    let Some(d) = Daemon::start("api forged_expired_and_revoked_tokens", CONFIG) else {
        return;
    };
    use base64::Engine as _;
    let admin = d.admin();
    let me = d.req("GET", "/auth/me", Some(&admin), None);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["role"], "admin");
    // The key file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.state_dir().join("jwt.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(admin.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let key = jwt_key(&d);
    let check = |token: &str, code: &str, why: &str| {
        let r = d.req("GET", "/sandboxes", Some(token), None);
        assert_eq!(
            (r.status, r.code()),
            (401, code.to_string()),
            "{why}: {}",
            r.text()
        );
    };
    // The same claims with another key, with alg none, expired, tampered.
    check(&sign(&payload, &[9u8; 32]), "invalid_token", "other key");
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(payload.to_string().as_bytes())
    );
    check(&none, "invalid_token", "alg none");
    let mut expired = payload.clone();
    expired["iat"] = (now() - 7200).into();
    expired["exp"] = (now() - 3600).into();
    check(&sign(&expired, &key), "token_expired", "expired");
    let mut other_user = payload.clone();
    other_user["sub"] = "root".into();
    check(
        &sign(&other_user, &key),
        "invalid_token",
        "a user that does not exist",
    );
    let mut parts: Vec<String> = admin.split('.').map(String::from).collect();
    let mut forged = payload.clone();
    forged["ep"] = 99.into();
    parts[1] = b64(forged.to_string().as_bytes());
    check(
        &parts.join("."),
        "invalid_token",
        "payload changed, signature kept",
    );
    check("not-a-token", "invalid_token", "garbage");
    let r = d.req("GET", "/sandboxes", None, None);
    assert_eq!((r.status, r.code().as_str()), (401, "missing_token"));

    // A deleted user's token stops working at once.
    d.add_user(&admin, "temp", "operator", None);
    let temp = d.login("temp", PASSWORD);
    assert_eq!(d.req("GET", "/sandboxes", Some(&temp), None).status, 200);
    assert_eq!(
        d.req("DELETE", "/users/temp", Some(&admin), None).status,
        200
    );
    check(&temp, "invalid_token", "deleted user");
    // Made again under the same name, the old token still does not work.
    d.add_user(&admin, "temp", "operator", None);
    check(&temp, "invalid_token", "re-created user");

    // Refresh rotates; logout revokes the access and refresh tokens.
    d.add_user(&admin, "carol", "viewer", None);
    let pair = d.login_pair("carol", PASSWORD);
    let refresh = pair["refresh_token"].as_str().unwrap();
    let r = d.req(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let pair2 = r.json();
    let r = d.req(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "invalid_refresh_token"),
        "reused"
    );
    let access2 = pair2["access_token"].as_str().unwrap();
    let r = d.req(
        "POST",
        "/auth/logout",
        Some(access2),
        Some(json!({"refresh_token": pair2["refresh_token"]})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    check(access2, "token_revoked", "after logout");
    let r = d.req(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": pair2["refresh_token"]})),
    );
    assert_eq!(r.status, 401);

    // A password change revokes every token of the user.
    let p1 = d.login_pair("carol", PASSWORD);
    let p2 = d.login_pair("carol", PASSWORD);
    let t1 = p1["access_token"].as_str().unwrap();
    let r = d.req(
        "POST",
        "/auth/password",
        Some(t1),
        Some(json!({"current_password": "wrong", "new_password": "An0ther-password!"})),
    );
    assert_eq!(r.status, 403);
    let r = d.req(
        "POST",
        "/auth/password",
        Some(t1),
        Some(json!({"current_password": PASSWORD, "new_password": "short"})),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "weak_password"));
    let r = d.req(
        "POST",
        "/auth/password",
        Some(t1),
        Some(json!({"current_password": PASSWORD, "new_password": "An0ther-password!"})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    check(t1, "token_revoked", "after password change");
    check(
        p2["access_token"].as_str().unwrap(),
        "token_revoked",
        "other session",
    );
    let r = d.req(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": p2["refresh_token"]})),
    );
    assert_eq!(r.status, 401);
    d.login("carol", "An0ther-password!");

    // Secrets never reach the audit log or the daemon's log.
    let export = d.req("GET", "/audit/export", Some(&admin), None).text();
    let log = d.log_text();
    for secret in [PASSWORD, ADMIN_PASSWORD, "An0ther-password!", refresh] {
        assert!(!export.contains(secret), "secret in the audit log");
        assert!(!log.contains(secret), "secret in the daemon log");
    }
}

#[test]
fn brute_force_lockout_and_rate_limit() {
    let Some(d) = Daemon::start("api brute_force_lockout_and_rate_limit", CONFIG) else {
        return;
    };
    let login = |user: &str, pw: &str| {
        d.req(
            "POST",
            "/auth/login",
            None,
            Some(json!({"username": user, "password": pw})),
        )
    };
    for i in 0..3 {
        let r = login("admin", &format!("guess-{i}"));
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "invalid_credentials"),
            "{i}"
        );
    }
    // Locked: even the right password is refused, with Retry-After.
    let r = login("admin", ADMIN_PASSWORD);
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "account_locked"),
        "{}",
        r.text()
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 200 && retry <= 300, "{retry}");
    // A name without a user locks the same way (no enumeration).
    for _ in 0..3 {
        assert_eq!(login("nobody", "x").code(), "invalid_credentials");
    }
    assert_eq!(login("nobody", "x").code(), "account_locked");
    // The host admin lifts the lockout.
    let (ok, out) = d.cli_stdin(&["user", "unlock", "admin"], "");
    assert!(ok, "{out}");
    let admin = d.admin();
    let failures = d.audit(&admin, "action=auth.login&outcome=failure");
    assert_eq!(failures.len(), 6, "{failures:?}");
    let refused = d.audit(&admin, "action=auth.login&outcome=denied");
    assert_eq!(refused.len(), 2, "{refused:?}");

    // Rate limit: 30 requests a minute per client.
    let mut policy = d.req("GET", "/security-policy", Some(&admin), None).json();
    policy["rate_limit_per_minute"] = 30.into();
    assert_eq!(
        d.req("PUT", "/security-policy", Some(&admin), Some(policy))
            .status,
        200
    );
    let mut limited = None;
    for i in 0..60 {
        let r = d.req("GET", "/health", None, None);
        if r.status == 429 {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status, 200);
    }
    let (i, r) = limited.expect("never rate limited");
    assert!(i >= 20, "limited after only {i} requests");
    assert_eq!(r.code(), "rate_limited");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn bad_bodies_and_routes() {
    let Some(d) = Daemon::start("api bad_bodies_and_routes", CONFIG) else {
        return;
    };
    let admin = d.admin();
    let auth = format!("Bearer {admin}");
    let post = |body: &[u8], ctype: Option<&str>| {
        let mut h = vec![("Authorization", auth.as_str())];
        if let Some(c) = ctype {
            h.push(("Content-Type", c));
        }
        raw(&d.sock, "POST", "/api/v1/sandboxes", &h, body)
    };
    let json_type = Some("application/json");
    let big = format!(
        r#"{{"name":"x","tenant":"acme","allow":["{}"]}}"#,
        "a".repeat(200_000)
    );
    let cases: Vec<(harness::Resp, u16, &str)> = vec![
        (post(big.as_bytes(), json_type), 413, "body_too_large"),
        (post(b"{\"name\": ", json_type), 400, "malformed_json"),
        (post(b"[1,2]", json_type), 422, "invalid_request"),
        (
            post(br#"{"name":"x","tenant":"acme","evil":1}"#, json_type),
            422,
            "invalid_request",
        ),
        (
            post(br#"{"name":"x","tenant":"acme"}"#, None),
            415,
            "unsupported_media_type",
        ),
        (
            post(
                br#"{"name":"Bad Name!","tenant":"acme","kind":"tap"}"#,
                json_type,
            ),
            422,
            "invalid_request",
        ),
        (
            post(br#"{"name":"ok","tenant":"acme","kind":"vm"}"#, json_type),
            422,
            "invalid_request",
        ),
        (
            post(
                br#"{"name":"ok","tenant":"acme","kind":"tap","allow":["icmp:1"]}"#,
                json_type,
            ),
            422,
            "invalid_request",
        ),
    ];
    for (r, status, code) in cases {
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            r.text()
        );
    }
    let r = d.req("GET", "/nothing/here", Some(&admin), None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = d.req("PUT", "/sandboxes", Some(&admin), None);
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    let r = d.req("GET", "/sandboxes?limit=0", Some(&admin), None);
    assert_eq!(r.status, 422);
    let r = d.req("GET", "/audit?since=yesterday-ish", Some(&admin), None);
    assert_eq!(r.status, 422, "{}", r.text());
    let r = d.req(
        "GET",
        "/compliance/report?framework=hipaa",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 422);
    let name = d.env.name("dup");
    assert_eq!(create(&d, &admin, &name, "acme").status, 201);
    let r = create(&d, &admin, &name, "acme");
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "conflict"),
        "{}",
        r.text()
    );
    let r = d.req(
        "POST",
        "/users",
        Some(&admin),
        Some(json!({"name": "weak", "password": "password", "role": "viewer"})),
    );
    assert_eq!((r.status, r.code().as_str()), (422, "weak_password"));
    // Every failed change is audited with its error code.
    let failed = d.audit(&admin, "action=sandbox.create&outcome=failure");
    assert!(failed.len() >= 7, "{failed:?}");
    assert!(failed
        .iter()
        .any(|r| r["details"]["error"] == "body_too_large"));
}

#[test]
fn hundred_concurrent_creations() {
    let Some(d) = Daemon::start("api hundred_concurrent_creations", CONFIG) else {
        return;
    };
    let admin = d.admin();
    let names: Vec<String> = (0..100).map(|i| d.env.name(&format!("c{i}"))).collect();
    let results: Vec<(String, u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (d, admin) = (&d, &admin);
                s.spawn(move || {
                    // One in ten in its own network namespace, the rest taps.
                    let kind = if i % 10 == 0 { "netns" } else { "tap" };
                    let r = d.req(
                        "POST",
                        "/sandboxes",
                        Some(admin),
                        Some(json!({"name": name, "tenant": format!("t{}", i % 4), "kind": kind})),
                    );
                    (name.clone(), r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, status, text) in &results {
        assert_eq!(*status, 201, "{name}: {text}");
    }
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    let mut after = String::new();
    let mut listed = 0;
    loop {
        let q = if after.is_empty() {
            "/sandboxes?limit=30".to_string()
        } else {
            format!("/sandboxes?limit=30&after={after}")
        };
        let page = d.req("GET", &q, Some(&admin), None).json();
        for s in page["items"].as_array().unwrap() {
            listed += 1;
            assert!(
                v4.insert(s["network"]["ipv4"].as_str().unwrap().to_string()),
                "IPv4 handed out twice: {s}"
            );
            assert!(
                v6.insert(s["network"]["ipv6"].as_str().unwrap().to_string()),
                "IPv6 handed out twice: {s}"
            );
        }
        match page["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert_eq!(listed, 100);
    let audited = d.audit(&admin, "action=sandbox.create");
    let targets: Vec<String> = audited
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = targets.iter().collect();
    assert_eq!(
        (targets.len(), unique.len()),
        (100, 100),
        "each creation audited once"
    );
    assert!(audited.iter().all(|r| r["outcome"] == "success"));
    let r = d.req("POST", "/verify", Some(&admin), None);
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    // The chain stays intact under concurrent appends.
    assert_eq!(
        d.req("GET", "/audit/verify", Some(&admin), None).json()["intact"],
        true
    );

    // Concurrent destruction leaves nothing.
    std::thread::scope(|s| {
        for name in &names {
            let (d, admin) = (&d, &admin);
            s.spawn(move || {
                let r = d.req("DELETE", &format!("/sandboxes/{name}"), Some(admin), None);
                assert_eq!(r.status, 200, "{name}: {}", r.text());
            });
        }
    });
    assert_eq!(d.audit(&admin, "action=sandbox.destroy").len(), 100);

    // A destroy through the API retires the veth; the daemon deletes it by
    // itself shortly after. In an adopted namespace nothing else could.
    let adopted = d.env.name("adopted");
    palisade_link::create_named_netns(&adopted).unwrap();
    let r = d.req(
        "POST",
        "/sandboxes",
        Some(&admin),
        Some(json!({"name": adopted, "tenant": "t0", "kind": "netns"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = d.req(
        "DELETE",
        &format!("/sandboxes/{adopted}"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !d.env.retired_links().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        d.env.retired_links(),
        Vec::<String>::new(),
        "the daemon left retired interfaces"
    );
    d.env.assert_empty();
    palisade_link::delete_named_netns(&adopted).unwrap();
}

#[test]
fn openapi_documents_every_route() {
    let Some(d) = Daemon::start("api openapi_documents_every_route", CONFIG) else {
        return;
    };
    let doc = d.req("GET", "/openapi.json", None, None).json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    // Every documented operation is routed: without a token, protected
    // ones answer 401 (not 404 or 405), public ones anything but those.
    let mut operations = 0;
    for (path, ops) in paths {
        let concrete = path
            .replace("{name}", "x")
            .replace("{tenant}", "acme")
            .replace("{id}", "1");
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let r = raw(&d.sock, &method.to_uppercase(), &concrete, &[], b"");
            if public {
                assert!(
                    ![401, 404, 405].contains(&r.status),
                    "{method} {path}: {}",
                    r.status
                );
            } else {
                assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
            }
        }
    }
    assert!(operations >= 36, "{operations}");
}

#[test]
fn audit_chain_detects_tampering() {
    let Some(mut d) = Daemon::start("api audit_chain_detects_tampering", CONFIG) else {
        return;
    };
    let admin = d.admin();
    for i in 0..3 {
        assert_eq!(
            create(&d, &admin, &d.env.name(&format!("s{i}")), "acme").status,
            201
        );
    }
    let r = d.req("GET", "/audit/verify", Some(&admin), None).json();
    assert_eq!(r["intact"], true, "{r}");
    let (ok, out) = d.cli_stdin(&["audit", "verify"], "");
    assert!(ok, "{out}");
    assert_eq!(d.stop().code(), Some(0), "graceful stop");
    assert!(!d.sock.exists(), "socket left behind");

    let db = rusqlite::Connection::open(d.state_dir().join("palisade.db")).unwrap();
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM audit_log WHERE action = 'sandbox.create' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Edit: who did it.
    db.execute(
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    let (ok, out) = d.cli_stdin(&["audit", "verify"], "");
    assert!(!ok, "edited record not detected: {out}");
    assert!(out.contains(&format!("record {seq}")), "{out}");
    db.execute("UPDATE audit_log SET actor = 'admin' WHERE seq = ?1", [seq])
        .unwrap();
    let (ok, out) = d.cli_stdin(&["audit", "verify"], "");
    assert!(ok, "restoring the record restores the chain: {out}");
    // Delete one from the middle.
    db.execute("DELETE FROM audit_log WHERE seq = ?1", [seq + 1])
        .unwrap();
    let (ok, out) = d.cli_stdin(&["audit", "verify", "--json"], "");
    assert!(!ok, "deleted record not detected: {out}");
    let report: Value = serde_json::from_str(
        out.lines()
            .take_while(|l| !l.starts_with("palisade:"))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap_or(json!({}));
    assert_eq!(report["intact"], false, "{out}");
    // The daemon says the same.
    d.spawn();
    let admin = d.admin();
    let r = d.req("GET", "/audit/verify", Some(&admin), None);
    assert_eq!(r.json()["intact"], false, "{}", r.text());
    assert!(
        r.text().contains(&format!("\"seq\":{}", seq + 1)),
        "{}",
        r.text()
    );
}

#[test]
fn totp_second_factor() {
    let Some(d) = Daemon::start("api totp_second_factor", CONFIG) else {
        return;
    };
    let admin = d.admin();
    d.add_user(&admin, "dana", "operator", None);
    let token = d.login("dana", PASSWORD);
    let r = d.req(
        "POST",
        "/auth/totp",
        Some(&token),
        Some(json!({"password": "wrong"})),
    );
    assert_eq!(
        r.status,
        403,
        "enrolment without the password: {}",
        r.text()
    );
    let r = d.req(
        "POST",
        "/auth/totp",
        Some(&token),
        Some(json!({"password": PASSWORD})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret).to_bytes().unwrap(),
    )
    .unwrap();
    let code = |t: i64| totp.generate(t as u64);
    // Not in force before confirmation.
    d.login("dana", PASSWORD);
    let r = d.req(
        "POST",
        "/auth/totp/confirm",
        Some(&token),
        Some(json!({"code": "000000"})),
    );
    assert!(r.status == 422 || code(now()) == "000000", "{}", r.text());
    let r = d.req(
        "POST",
        "/auth/totp/confirm",
        Some(&token),
        Some(json!({"code": code(now())})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let login = |body: Value| d.req("POST", "/auth/login", None, Some(body));
    let r = login(json!({"username": "dana", "password": PASSWORD}));
    assert_eq!((r.status, r.code().as_str()), (401, "totp_required"));
    let wrong = if code(now()) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let r = login(json!({"username": "dana", "password": PASSWORD, "totp": wrong}));
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_credentials"));
    let r = login(json!({"username": "dana", "password": PASSWORD, "totp": code(now())}));
    assert_eq!(r.status, 200, "{}", r.text());
    // The admin can reset it for a user who lost the device.
    let r = d.req(
        "PATCH",
        "/users/dana",
        Some(&admin),
        Some(json!({"reset_totp": true})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["totp"], false);
    d.login("dana", PASSWORD);
}

#[test]
fn tls_listener_and_cli_beside_the_daemon() {
    // A certificate for 127.0.0.1, made for this test.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=palisade-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = format!(
        "{CONFIG}[server]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let Some(d) = Daemon::start("api tls_listener_and_cli_beside_the_daemon", &config) else {
        return;
    };
    let curl = |args: &[&str]| {
        let mut full = vec!["-s", "-S", "--max-time", "10"];
        full.extend_from_slice(args);
        d.env
            .lab
            .command(std::path::Path::new("curl"), &full, &[])
            .unwrap()
    };
    let cacert = cert.display().to_string();
    let out = curl(&["--cacert", &cacert, "https://127.0.0.1:8443/api/v1/health"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\""));
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let out = curl(&[
        "--cacert",
        &cacert,
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        "https://127.0.0.1:8443/api/v1/auth/login",
    ]);
    let pair: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pair["access_token"].is_string(), "{pair}");
    // Plain HTTP to the TLS port gets no answer.
    let out = curl(&["http://127.0.0.1:8443/api/v1/health"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"ok\""));
    // Logins over TCP are recorded with the client's address.
    let admin = d.admin();
    let logins = d.audit(&admin, "action=auth.login");
    assert!(
        logins.iter().any(|r| r["source"] == "127.0.0.1"),
        "{logins:?}"
    );

    // The CLI and the daemon share the store and the lock: what one makes,
    // the other sees; concurrent writers both succeed.
    let (via_api, via_cli) = (d.env.name("api"), d.env.name("cli"));
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(create(&d, &admin, &via_api, "acme").status, 201));
        s.spawn(|| {
            d.env.ok(&[
                "sandbox", "create", &via_cli, "--tenant", "acme", "--kind", "tap",
            ]);
        });
    });
    let list = d.env.json(&["sandbox", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{via_cli}"), Some(&admin), None)
            .status,
        200
    );
    d.env.ok(&["verify"]);

    // The daemon keeps its engine between requests, without the lock: a
    // CLI command in between runs, and the daemon sees what it did.
    d.env.ok(&["sandbox", "destroy", &via_cli]);
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{via_cli}"), Some(&admin), None)
            .status,
        404
    );
    // A CLI command killed midway is repaired by the daemon's next request,
    // made with the engine it kept.
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{via_api}"), Some(&admin), None)
            .status,
        200
    );
    let out = d.env.palisade_env(
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--deny",
            "--proto",
            "tcp",
            "--port",
            "9",
            "--cidr",
            "203.0.113.10/32",
        ],
        &[("PALISADE_CRASH_AT", "rule-after-journal")],
    );
    assert!(!out.status.success());
    assert_eq!(
        d.req("GET", &format!("/sandboxes/{via_api}"), Some(&admin), None)
            .status,
        200
    );
    let log = d.log_text();
    assert!(
        log.contains("repaired an interrupted operation") && log.contains("rule 1 of tenant acme"),
        "{log}"
    );
    d.env.ok(&["verify"]);
}

/// A mode switched by the CLI (possible only with no sandbox attached)
/// holds for the daemon's next request too: it runs with the engine it
/// kept, and a configuration that names no mode follows the store.
#[test]
fn the_daemon_follows_a_mode_switch_between_requests() {
    let Some(d) = Daemon::start(
        "api the_daemon_follows_a_mode_switch_between_requests",
        CONFIG,
    ) else {
        return;
    };
    let admin = d.admin();
    let first = d.env.name("first");
    assert_eq!(create(&d, &admin, &first, "acme").status, 201);
    let show = d.env.json(&["sandbox", "show", &first, "--json"]);
    assert_eq!(show["network"]["bridge"], "palisade0", "{show}");
    d.env.ok(&["sandbox", "destroy", &first]);

    // The CLI, configured for routed mode, switches the host.
    std::fs::write(
        d.env.dir.join("palisade.toml"),
        format!("{CONFIG}[network]\nmode = \"routed\"\n"),
    )
    .unwrap();
    assert_eq!(d.env.json(&["status", "--json"])["mode"], "routed");

    // The daemon's next sandbox is routed, as the store now says.
    let second = d.env.name("second");
    assert_eq!(create(&d, &admin, &second, "acme").status, 201);
    let show = d.env.json(&["sandbox", "show", &second, "--json"]);
    assert!(show["network"]["bridge"].is_null(), "{show}");
    d.env.ok(&["verify"]);
    d.env.ok(&["sandbox", "destroy", &second]);
    d.env.assert_empty();
}
