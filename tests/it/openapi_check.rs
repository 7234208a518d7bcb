//! The admin API's OpenAPI description: the checked-in `docs/openapi.json` is the generated
//! one; a small JSON Schema checker for the answers the server sends; and a raw HTTP helper
//! that shows headers and takes any body and content type.
//!
//! The checker knows the keywords utoipa writes for OpenAPI 3.1 (JSON Schema 2020-12) and
//! refuses a schema with any other keyword, so a new construct in the description makes the
//! test fail until the checker learns it, instead of passing unchecked.

use std::path::PathBuf;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// `docs/openapi.json` is what the code generates. To regenerate it after changing a handler:
/// `UPDATE_OPENAPI=1 cargo test --test it openapi_file` (or, once the CLI has the
/// subcommand, `cargo run -- openapi > docs/openapi.json`).
#[test]
fn openapi_file_is_the_generated_description() {
    let generated = generated_json();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&file, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&file).unwrap();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not what the code generates; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test --test it openapi_file` and commit it"
    );
}

/// The description as the code generates it, pretty-printed with a final newline.
pub fn generated_json() -> String {
    poortwachter::api::openapi().to_pretty_json().unwrap() + "\n"
}

/// Why `value` does not fit `schema`, or `None` when it does. `spec` is the whole
/// description, against which `$ref: '#/components/schemas/X'` resolves.
pub fn mismatch(spec: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    const KNOWN: &[&str] = &[
        "$ref",
        "type",
        "enum",
        "oneOf",
        "anyOf",
        "allOf",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "items",
        "format",
        "minLength",
        "minItems",
        "minimum",
        // annotations, nothing to check
        "description",
        "title",
        "example",
        "examples",
        "default",
        "deprecated",
    ];
    let schema = schema.as_object().expect("a schema is an object");
    for keyword in schema.keys() {
        assert!(
            KNOWN.contains(&keyword.as_str()),
            "the checker does not know the keyword {keyword} (at {at}): teach it"
        );
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| spec.pointer(pointer))
            .unwrap_or_else(|| panic!("unresolvable $ref {reference}"));
        return mismatch(spec, target, value, at);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("type must be a string or a list, is {other}"),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            return Some(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Some(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fitting = options
            .iter()
            .filter(|o| mismatch(spec, o, value, at).is_none())
            .count();
        if fitting != 1 {
            return Some(format!(
                "{at}: {value} fits {fitting} of the oneOf options, not exactly one"
            ));
        }
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        if options
            .iter()
            .all(|o| mismatch(spec, o, value, at).is_some())
        {
            return Some(format!("{at}: {value} fits none of the anyOf options"));
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        if let Some(why) = parts.iter().find_map(|p| mismatch(spec, p, value, at)) {
            return Some(why);
        }
    }
    if let Value::String(text) = value {
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && chrono::DateTime::parse_from_rfc3339(text).is_err()
        {
            return Some(format!("{at}: {text:?} is not an RFC 3339 date-time"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (text.chars().count() as u64) < min {
                return Some(format!("{at}: {text:?} is shorter than {min}"));
            }
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if value.as_f64().is_some_and(|n| n < min) {
            return Some(format!("{at}: {value} is below {min}"));
        }
    }
    if let Value::Array(items) = value {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                return Some(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                if let Some(why) = mismatch(spec, item_schema, item, &format!("{at}[{i}]")) {
                    return Some(why);
                }
            }
        }
    }
    if let Value::Object(fields) = value {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !fields.contains_key(name) {
                return Some(format!("{at}: required field {name} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in fields {
            let here = format!("{at}.{name}");
            let declared = properties.and_then(|p| p.get(name));
            let why = match (declared, schema.get("additionalProperties")) {
                (Some(field_schema), _) => mismatch(spec, field_schema, field, &here),
                (None, Some(Value::Bool(false))) => Some(format!("{here}: not a documented field")),
                (None, Some(extra)) if extra.is_object() => mismatch(spec, extra, field, &here),
                // Not described: JSON Schema allows it. The response structs list every
                // field they send, so this only happens for free-form objects.
                (None, _) => None,
            };
            if why.is_some() {
                return why;
            }
        }
    }
    None
}

/// The checker itself fails where it must (a checker that passes everything checks nothing).
#[test]
fn the_schema_checker_refuses_what_does_not_fit() {
    let spec = json!({ "components": { "schemas": {
        "Thing": {
            "type": "object",
            "required": ["name", "when"],
            "properties": {
                "name": { "type": "string", "minLength": 1 },
                "when": { "type": "string", "format": "date-time" },
                "kind": { "type": "string", "enum": ["a", "b"] },
                "tags": { "type": "array", "items": { "type": "string" }, "minItems": 1 },
                "note": { "type": ["string", "null"] },
                "count": { "type": "integer", "minimum": 0 },
            },
            "additionalProperties": false,
        },
        "Counts": { "type": "object", "additionalProperties": { "type": "integer" } },
    }}});
    let thing = json!({ "$ref": "#/components/schemas/Thing" });
    let good = json!({ "name": "x", "when": "2026-11-23T08:00:00+00:00", "kind": "a",
                       "tags": ["t"], "note": null, "count": 3 });
    assert_eq!(mismatch(&spec, &thing, &good, "$"), None);
    let with = |key: &str, value: Value| {
        let mut v = good.clone();
        v[key] = value;
        v
    };
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("when");
    for bad in [
        missing,
        with("name", json!(1)),
        with("name", json!("")),
        with("when", json!("next monday")),
        with("kind", json!("c")),
        with("tags", json!([])),
        with("tags", json!([1])),
        with("count", json!(-1)),
        with("count", json!(1.5)),
        with("extra", json!(true)),
        json!(null),
    ] {
        assert!(
            mismatch(&spec, &thing, &bad, "$").is_some(),
            "{bad} should not fit"
        );
    }
    let counts = json!({ "$ref": "#/components/schemas/Counts" });
    assert_eq!(mismatch(&spec, &counts, &json!({"p": 2}), "$"), None);
    assert!(mismatch(&spec, &counts, &json!({"p": "2"}), "$").is_some());
    let either = json!({ "oneOf": [{ "type": "null" }, thing.clone()] });
    assert_eq!(mismatch(&spec, &either, &Value::Null, "$"), None);
    assert_eq!(mismatch(&spec, &either, &good, "$"), None);
    assert!(mismatch(&spec, &either, &json!(7), "$").is_some());
}

/// An answer, with its headers and its body as JSON (`Null` when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `body` as it is, with `content_type` if given and `authorization` if given.
pub async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.backchannel().request(method, app.url(path));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        body,
    }
}

/// Assert that `answer` is one of the operation's documented responses and that its body
/// fits the documented schema (or is empty where none is documented).
pub fn assert_documented(spec: &Value, operation: &Value, answer: &Answer, what: &str) {
    let code = answer.status.as_u16().to_string();
    let Some(response) = operation["responses"].get(&code) else {
        panic!(
            "{what}: {code} is not a documented response: {}",
            answer.text
        )
    };
    match response["content"].get("application/json") {
        Some(content) => {
            assert!(
                answer
                    .header("content-type")
                    .is_some_and(|t| t.starts_with("application/json")),
                "{what}: {code} documented as JSON, sent as {:?}",
                answer.header("content-type")
            );
            if let Some(why) = mismatch(spec, &content["schema"], &answer.body, "$") {
                panic!(
                    "{what}: {code} does not fit its schema: {why}\n{}",
                    answer.text
                );
            }
        }
        None => assert!(
            answer.text.is_empty(),
            "{what}: {code} documented without a body, sent {}",
            answer.text
        ),
    }
}
