//! The OpenAPI 3.1 document, built from the route table so that every
//! route is in it with its method, parameters, body, answers and whether it
//! needs a token.

use super::routes::{table, PREFIX};
use serde_json::{json, Map, Value};

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

fn s() -> Value {
    json!({ "type": "string" })
}

fn b() -> Value {
    json!({ "type": "boolean" })
}

fn int() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn arr(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn page(item: &str) -> Value {
    obj(&["items"], json!({ "items": arr(r(item)), "next": s() }))
}

fn schemas() -> Value {
    let exposure = obj(
        &["proto", "host_ip", "host_ports", "guest_ports"],
        json!({
            "proto": { "enum": ["tcp", "udp"] }, "host_ip": { "type": ["string", "null"] },
            "host_ports": { "type": "string", "description": "PORT or FIRST-LAST" },
            "guest_ports": { "type": "string", "description": "PORT or FIRST-LAST" }
        }),
    );
    let policy = obj(
        &[
            "password_min_length",
            "password_min_classes",
            "access_token_minutes",
            "refresh_token_hours",
            "lockout_threshold",
            "lockout_minutes",
            "rate_limit_per_minute",
        ],
        json!({
            "password_min_length": int(), "password_min_classes": int(),
            "access_token_minutes": int(), "refresh_token_hours": int(),
            "lockout_threshold": int(), "lockout_minutes": int(), "rate_limit_per_minute": int()
        }),
    );
    let rule_in = obj(
        &["action", "proto", "cidr"],
        json!({
            "action": { "enum": ["allow", "deny"] }, "proto": { "enum": ["tcp", "udp"] },
            "ports": { "type": ["string", "null"], "description": "PORT or FIRST-LAST; absent or null for all ports" },
            "cidr": s()
        }),
    );
    let audit_record = obj(
        &[
            "seq",
            "time",
            "actor",
            "source",
            "action",
            "target",
            "outcome",
            "details",
            "prev_hash",
            "hash",
        ],
        json!({
            "seq": int(), "time": s(), "actor": s(), "source": s(), "action": s(), "target": s(),
            "tenant": s(), "outcome": { "enum": ["success", "failure", "denied"] },
            "details": { "type": "object" }, "prev_hash": s(), "hash": s()
        }),
    );
    json!({
        "Error": obj(&["error"], json!({ "error": obj(&["code", "message"], json!({ "code": s(), "message": s() })) })),
        "Empty": { "description": "No body (204)." },
        "Health": obj(&["status"], json!({ "status": s(), "version": s() })),
        "OpenApi": { "type": "object" },
        "LoginRequest": obj(&["username", "password"], json!({ "username": s(), "password": s(), "totp": s() })),
        "RefreshRequest": obj(&["refresh_token"], json!({ "refresh_token": s() })),
        "LogoutRequest": obj(&[], json!({ "refresh_token": s() })),
        "TokenPair": obj(&["access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"],
            json!({ "access_token": s(), "token_type": s(), "expires_in": int(), "refresh_token": s(), "refresh_expires_in": int() })),
        "PasswordChange": obj(&["current_password", "new_password"], json!({ "current_password": s(), "new_password": s() })),
        "PasswordConfirm": obj(&["password"], json!({ "password": s() })),
        "TotpEnrolment": obj(&["secret", "otpauth_uri"], json!({ "secret": s(), "otpauth_uri": s() })),
        "TotpCode": obj(&["code"], json!({ "code": s() })),
        "User": obj(&["name", "role", "totp", "created_at", "password_changed_at"], json!({
            "name": s(), "role": { "enum": ["admin", "operator", "viewer"] }, "tenant": s(), "totp": b(),
            "created_at": s(), "password_changed_at": s(), "locked_until": int()
        })),
        "Users": arr(r("User")),
        "UserCreate": obj(&["name", "password", "role"], json!({
            "name": s(), "password": s(), "role": { "enum": ["admin", "operator", "viewer"] }, "tenant": s()
        })),
        "UserUpdate": obj(&[], json!({
            "role": { "enum": ["admin", "operator", "viewer"] },
            "tenant": { "type": "string", "description": "\"\" removes the scope" },
            "password": s(), "reset_totp": b(), "unlock": b()
        })),
        "Exposure": exposure,
        "Exposures": arr(r("Exposure")),
        "Sandbox": obj(&["name", "tenant", "kind", "state", "internet", "allow", "exposures", "created_at"], json!({
            "name": s(), "tenant": s(), "kind": { "enum": ["netns", "tap", "none", "cni"] }, "state": s(),
            "internet": b(), "allow": arr(s()), "exposures": arr(r("Exposure")),
            "netns": { "type": "object" }, "network": { "type": "object" }, "cni": { "type": "object" }, "created_at": s()
        })),
        "SandboxPage": page("Sandbox"),
        "SandboxCreate": obj(&["name"], json!({
            "name": s(), "tenant": s(), "kind": { "enum": ["netns", "tap", "none"], "default": "netns" },
            "internet": b(), "allow": arr(s())
        })),
        "SandboxUpdate": obj(&[], json!({ "internet": b(), "allow": arr(s()), "revoke": arr(s()), "all_ports": b() })),
        "SandboxUpdated": obj(&["sandbox", "changed", "narrowed"], json!({
            "sandbox": r("Sandbox"), "changed": b(), "narrowed": b()
        })),
        "ExposureCreate": obj(&["port"], json!({
            "port": s(), "host_port": s(), "proto": { "enum": ["tcp", "udp"], "default": "tcp" }, "host_ip": s()
        })),
        "ExposureAdded": obj(&["sandbox", "exposure"], json!({ "sandbox": r("Sandbox"), "exposure": r("Exposure") })),
        "VerifyRequest": obj(&[], json!({ "sandbox": s(), "probe": b(), "timeout_ms": { "type": "integer", "minimum": 50, "maximum": 10000, "default": 500 } })),
        "VerifyResult": obj(&["ok"], json!({ "ok": b(), "differences": arr(json!({ "type": "object" })), "rules": { "type": "object" } })),
        "Status": { "type": "object" },
        "Tenant": obj(&["name", "sandboxes", "rules", "configured"], json!({ "name": s(), "sandboxes": int(), "rules": int(), "configured": b() })),
        "Tenants": arr(r("Tenant")),
        "TenantRuleCreate": rule_in,
        "TenantRule": obj(&["id", "tenant", "action", "proto", "ports", "cidr", "created_at"], json!({
            "id": int(), "tenant": s(), "action": { "enum": ["allow", "deny"] }, "proto": { "enum": ["tcp", "udp"] },
            "ports": { "type": ["string", "null"], "description": "PORT or FIRST-LAST; null for all ports" }, "cidr": s(), "created_at": s()
        })),
        "TenantRules": arr(r("TenantRule")),
        "SecurityPolicy": policy,
        "AuditRecord": audit_record,
        "AuditPage": obj(&["items"], json!({ "items": arr(r("AuditRecord")), "next": int() })),
        "ChainReport": obj(&["intact", "records_checked", "problems"], json!({
            "intact": b(), "records_checked": int(), "first_seq": int(), "last_seq": int(),
            "checkpoint": { "type": ["object", "null"] }, "problems_omitted": int(),
            "problems": arr(obj(&["seq", "kind", "detail"], json!({ "seq": int(), "kind": s(), "detail": s() })))
        })),
        "JsonLines": { "type": "string", "description": "One AuditRecord as JSON per line." },
        "ComplianceReport": obj(&["framework", "generated_at", "overall", "controls"], json!({
            "framework": s(), "framework_title": s(), "generated_at": s(),
            "overall": { "enum": ["pass", "fail", "not_applicable"] },
            "summary": { "type": "object" }, "evidence": { "type": "object" },
            "controls": arr(obj(&["id", "title", "status", "rationale", "evidence"], json!({
                "id": s(), "title": s(), "status": { "enum": ["pass", "fail", "not_applicable"] },
                "rationale": s(), "evidence": arr(s())
            })))
        })),
    })
}

fn error_answer(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": r("Error") } } })
}

fn success_status(method: &axum::http::Method, path: &str) -> &'static str {
    use axum::http::Method;
    match (method, path) {
        (&Method::POST, "/sandboxes")
        | (&Method::POST, "/sandboxes/{name}/exposures")
        | (&Method::POST, "/tenants/{tenant}/rules")
        | (&Method::POST, "/users")
        | (&Method::POST, "/auth/totp") => "201",
        (&Method::POST, "/auth/logout")
        | (&Method::POST, "/auth/password")
        | (&Method::POST, "/auth/totp/confirm")
        | (&Method::DELETE, "/auth/totp") => "204",
        _ => "200",
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (route, _) in table() {
        let mut op = Map::new();
        op.insert("operationId".into(), route.action.replace('.', "_").into());
        op.insert("summary".into(), route.summary.into());
        op.insert(
            "tags".into(),
            json!([route
                .path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("")]),
        );
        let mut params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": if p == "id" { int() } else { s() } }))
            .collect();
        params.extend(route.query.iter().map(|q| {
            let schema = match *q {
                "limit" => {
                    json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 })
                }
                "after" if route.path == "/audit" => int(),
                "outcome" => json!({ "enum": ["success", "failure", "denied"] }),
                "format" => json!({ "enum": ["json", "markdown", "html"], "default": "json" }),
                "framework" => {
                    json!({ "enum": ["soc2", "pci-dss-4.0", "nist-800-53", "iso27001-2022"] })
                }
                "proto" => json!({ "enum": ["tcp", "udp"], "default": "tcp" }),
                "kind" => json!({ "enum": ["netns", "tap", "none", "cni"] }),
                _ => s(),
            };
            json!({ "name": q, "in": "query", "required": false, "schema": schema })
        }));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(body) = route.body {
            // Logout and verify take an empty body too.
            let required = !matches!(route.path, "/auth/logout" | "/verify");
            op.insert(
                "requestBody".into(),
                json!({ "required": required, "content": { "application/json": { "schema": r(body) } } }),
            );
        }
        let content_type = match route.answer {
            "JsonLines" => "application/x-ndjson",
            _ => "application/json",
        };
        let mut answers = Map::new();
        let ok = success_status(&route.method, route.path);
        answers.insert(
            ok.into(),
            if ok == "204" {
                json!({ "description": "Done." })
            } else {
                json!({ "description": "Success.", "content": { content_type: { "schema": r(route.answer) } } })
            },
        );
        answers.insert("422".into(), error_answer("Invalid input."));
        answers.insert(
            "429".into(),
            error_answer("Rate limited or account locked (Retry-After)."),
        );
        if route.body.is_some() {
            answers.insert("400".into(), error_answer("Malformed JSON."));
            answers.insert("413".into(), error_answer("Body over the size limit."));
            answers.insert(
                "415".into(),
                error_answer("The body is not sent as application/json."),
            );
        }
        answers.insert(
            "405".into(),
            error_answer("The path does not take this method."),
        );
        answers.insert("500".into(), error_answer("apply_failed: the kernel refused the change and nothing was applied; internal: see the daemon's log."));
        if route.public {
            op.insert("security".into(), json!([]));
            if route.action.starts_with("auth.") {
                answers.insert("401".into(), error_answer("Wrong credentials or token."));
            }
        } else {
            answers.insert(
                "401".into(),
                error_answer("Missing, invalid, expired or revoked token."),
            );
            answers.insert("403".into(), error_answer("The role does not allow it."));
            answers.insert(
                "404".into(),
                error_answer("No such object (or another tenant's)."),
            );
            answers.insert(
                "409".into(),
                error_answer("Conflict with the current state."),
            );
        }
        op.insert("responses".into(), Value::Object(answers));
        let entry = paths
            .entry(format!("{PREFIX}{}", route.path))
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = Value::Object(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "palisade API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Network isolation for untrusted sandboxes: sandboxes, exposures, tenant rules, verification, users, audit log and compliance reports."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": schemas()
        },
        "security": [{ "bearer": [] }],
        "paths": paths
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_schemas() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (route, _) in table() {
            let path = format!("{PREFIX}{}", route.path);
            let op = &doc["paths"][&path][route.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {path} missing", route.method);
            for name in route.body.iter().chain(std::iter::once(&route.answer)) {
                assert!(schemas.contains_key(*name), "schema {name} missing");
            }
        }
        // Every $ref points at a schema that exists.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
    }
}
