//! The OpenAPI document served at `/openapi.json`, built from one table of routes. A test
//! sends a request to every row and checks that the router knows it, so the document and the
//! routes cannot drift apart.

use serde_json::{Map, Value, json};

use crate::error::ERROR_CODES;

/// (method, path, summary, roles allowed).
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/health", "Liveness; needs no key", "open"),
    ("get", "/openapi.json", "This document", "any"),
    (
        "get",
        "/api/customers",
        "Search customers by id prefix (`q`, `limit`) with their service level",
        "any (agents: own customers)",
    ),
    (
        "get",
        "/api/customers/{id}",
        "Customer card: levels on every ladder with explanations, owner, tags, benefits with quota used and remaining",
        "any (agents: own customers)",
    ),
    (
        "get",
        "/api/customers/{id}/levels",
        "Tier lookup: level, score and rank on every ladder of the served run (from memory)",
        "any (agents: own customers)",
    ),
    (
        "get",
        "/api/customers/{id}/history",
        "Level timeline across runs with reasons",
        "any (agents: own customers)",
    ),
    (
        "get",
        "/api/customers/{id}/explain",
        "What the served run recorded: metrics, placements, explanations, pending changes; `?recompute=true` (admin, analyst) evaluates the policy afresh, one at a time, time-limited",
        "admin, analyst, agent (own)",
    ),
    (
        "get",
        "/api/customers/{id}/redemptions",
        "The customer's redemptions, newest first",
        "any (agents: own customers)",
    ),
    (
        "post",
        "/api/customers/{id}/redemptions",
        "Redeem a benefit: body {benefit, quantity}; header Idempotency-Key makes retries safe",
        "admin, agent (own), service",
    ),
    (
        "put",
        "/api/customers/{id}/inputs/{field}",
        "Set a manual scorecard input: body {value, reason}",
        "admin",
    ),
    (
        "post",
        "/api/redemptions/{id}/cancel",
        "Cancel a redemption; its quota is restored",
        "admin, agent (own), service",
    ),
    (
        "post",
        "/api/runs",
        "Run the served policy over its data and record the run (body {as_of?, allow_future_as_of?}); one at a time",
        "admin, analyst",
    ),
    (
        "post",
        "/api/simulate",
        "What-if: a draft policy (body {policy: TOML text, as_of?}) over the same data against the latest run; records nothing",
        "admin, analyst",
    ),
    (
        "get",
        "/api/benefits",
        "The benefits catalog: quota per level and period",
        "any",
    ),
    (
        "get",
        "/api/runs",
        "The served policy's recorded runs",
        "admin, analyst",
    ),
    ("get", "/api/runs/{id}", "One run", "admin, analyst"),
    (
        "get",
        "/api/diff",
        "Migration matrix between two runs (`from`, `to`; default the last two)",
        "admin, analyst",
    ),
    (
        "post",
        "/api/queue/order",
        "Order a waiting list by level with aging, the blacklist last: body {waiting: [{customer_id, arrived_at}], now?}",
        "any",
    ),
    (
        "post",
        "/api/calls/missed",
        "Log a missed call; creates a call-back task where the level has one: body {customer_id, at?}",
        "admin, agent, service",
    ),
    (
        "get",
        "/api/callbacks",
        "Open call-back tasks, earliest due first",
        "any (agents: own customers)",
    ),
    (
        "post",
        "/api/callbacks/{id}/done",
        "Complete a call-back",
        "admin, agent (own), service",
    ),
    (
        "post",
        "/api/sla/report",
        "Share of calls answered within each level's target: body {calls: [{customer_id, queued_at, answered_at|null}]}",
        "admin, analyst",
    ),
    ("get", "/api/overrides", "Level overrides", "admin, analyst"),
    (
        "post",
        "/api/overrides",
        "Add an override: body {customer_id, ladder, level, mode?, reason, until?}",
        "admin",
    ),
    (
        "post",
        "/api/overrides/{id}/remove",
        "Remove an override: body {reason}",
        "admin",
    ),
    ("get", "/api/inputs", "Manual inputs", "admin, analyst"),
    ("get", "/api/users", "Users and roles", "admin"),
    (
        "post",
        "/api/users",
        "Add a user: body {name, role}",
        "admin",
    ),
    (
        "post",
        "/api/users/{name}/disable",
        "Disable a user: its keys stop working (within the one-minute key cache)",
        "admin",
    ),
    (
        "get",
        "/api/audit",
        "The audit log, newest first (`limit`)",
        "admin",
    ),
];

pub fn openapi_document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, roles) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "description": format!("Roles: {roles}."),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if *roles == "open" {
            op["security"] = json!([]);
        }
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(method.to_string(), op);
    }
    let codes: Vec<Value> = ERROR_CODES.iter().map(|c| json!(c.0)).collect();
    // What every error body's `link` points at (`#/components/x-error-codes/CODE`).
    let explained: Map<String, Value> = ERROR_CODES
        .iter()
        .map(|(code, status, kind, when)| {
            (
                code.to_string(),
                json!({"status": status, "type": kind, "when": when}),
            )
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Stratum", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "x-error-codes": explained,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "stk_<id>_<secret>, from `stratum key create`"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["message", "code", "type", "link"],
                "properties": {
                    "message": {"type": "string"},
                    "code": {"type": "string", "enum": codes},
                    "type": {"type": "string", "enum": ["auth", "invalid_request", "internal"]},
                    "link": {"type": "string"}
                }
            }}
        }
    })
}
