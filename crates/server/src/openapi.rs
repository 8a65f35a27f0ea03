//! The OpenAPI document served at `/openapi.json`, built from the route tables the router
//! and the role check are built from (`routes`), so the three cannot drift apart.

use serde_json::{Map, Value, json};

use crate::error::ERROR_CODES;
use crate::routes::routes;

pub fn openapi_document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in routes() {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": route.summary,
            "description": format!("Roles: {}.", route.roles_text()),
            "x-roles": route.roles.map(|roles| roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if route.roles.is_none() {
            op["security"] = json!([]);
        }
        paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(route.method.as_str().to_lowercase(), op);
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
