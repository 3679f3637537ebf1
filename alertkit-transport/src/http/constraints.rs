//! The rules the handlers enforce, written into the OpenAPI document, so
//! that it describes exactly which requests are accepted: lengths, patterns,
//! ranges, list sizes, the conditions of each rule kind, which answers each
//! operation can give. A client generated from the document (or a fuzzer
//! such as Schemathesis) then never sends a schema-valid request that is
//! refused, and every request the document forbids is refused.
//!
//! The limits come from the same constants the validators use
//! ([`alertkit_core::limits`] and friends). Patterns are ECMAScript and
//! Python compatible: a string must not end in a newline where a newline is
//! not allowed, hence the `(?!\n)` before each `$` (Python's `$` also
//! matches before a final newline).
//!
//! What a schema cannot say is in the field's description: an
//! `expires_at` must be in the future, `metadata` is at most 16 KiB of
//! JSON, a list cursor must be one the server gave out.

use serde_json::{Map, Value, json};

use alertkit_core::MAX_RULE_SECS;
use alertkit_core::alert::limits;
use alertkit_core::audience::MAX_TARGET_LEN;
use alertkit_core::engine::MAX_DELIVERIES;
use alertkit_core::query::MAX_LIMIT;

/// Control characters (`char::is_control`): C0, DEL and C1.
const CTRL: &str = r"\u0000-\u001F\u007F-\u009F";
/// Unicode `White_Space` (`char::is_whitespace`, what `str::trim` strips).
const WS: &str =
    r"\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// A leap year: divisible by 4, and by 400 if by 100.
const LEAP: &str = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";

/// An RFC 3339 time as both the query parser and the JSON bodies read it,
/// in years 1 to 9999, with real dates only (JSON Schema's `format` is an
/// annotation: it does not make `""` invalid). A leap second (`:60`) is
/// left out, and so are offsets that would move a time out of the years 1
/// to 9999.
fn date_time() -> String {
    format!(
        "^(?!0000)(?!(?:[0-9]{{4}}-(?:02-3|(?:0[469]|11)-31)))(?!(?!{LEAP})[0-9]{{4}}-02-29)\
         (?!0001-01-01T[^+]*\\+)(?!9999-12-31T[^-]*-)\
         [0-9]{{4}}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])\
         T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,9}})?\
         (?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])(?!\\n)$"
    )
}

/// 1 to `max` characters, no control characters, not blank.
fn short(max: usize) -> Value {
    json!({
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^[^{CTRL}]*[^{CTRL}{WS}][^{CTRL}]*(?!\\n)$"),
    })
}

/// Up to `max` characters; newlines and tabs are the only control
/// characters allowed.
fn text(max: usize) -> Value {
    json!({
        "maxLength": max,
        "pattern": r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$",
    })
}

/// `min` to `max` characters, no control characters.
fn plain(min: usize, max: usize) -> Value {
    json!({
        "minLength": min,
        "maxLength": max,
        "pattern": format!("^[^{CTRL}]*(?!\\n)$"),
    })
}

/// `min` to `max` characters, neither control characters nor spaces.
fn token(min: usize, max: usize) -> Value {
    json!({
        "minLength": min,
        "maxLength": max,
        "pattern": format!("^[^{CTRL}{WS}]*(?!\\n)$"),
    })
}

/// An `http://` or `https://` URL without spaces, at most 2048 characters.
fn url() -> Value {
    json!({
        "maxLength": 2048,
        "pattern": format!("^https?://[^{CTRL}{WS}]*(?!\\n)$"),
    })
}

/// One `@` between two parts without spaces, at most 254 characters.
fn email() -> Value {
    json!({
        "maxLength": 254,
        "pattern": format!("^[^@{CTRL}{WS}]+@[^@{CTRL}{WS}]+(?!\\n)$"),
    })
}

/// `everyone`, `user:<id>` or `group:<name>`; the id or name has no
/// control characters, no surrounding spaces and at most 256 characters.
fn target() -> Value {
    let inner = MAX_TARGET_LEN - 2;
    json!({
        "type": "string",
        "pattern": format!(
            "^(?:everyone|(?:user|group):[^{CTRL}{WS}](?:[^{CTRL}]{{0,{inner}}}[^{CTRL}{WS}])?)(?!\\n)$"
        ),
    })
}

/// Matches `word` in any letter case (severities are case-insensitive).
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Severity names as query values accept them: any case, surrounded by
/// spaces or not.
fn severity_names() -> String {
    ["info", "low", "medium", "warning", "high", "critical"]
        .iter()
        .map(|s| any_case(s))
        .collect::<Vec<_>>()
        .join("|")
}

/// A comma-separated list of severities (empty items are ignored).
fn severity_list() -> Value {
    let item = format!("[{WS}]*(?:{})?[{WS}]*", severity_names());
    json!({"type": "string", "pattern": format!("^{item}(?:,{item})*$")})
}

/// One severity, any case.
fn severity_one() -> Value {
    json!({"type": "string", "pattern": format!("^[{WS}]*(?:{})[{WS}]*$", severity_names())})
}

/// A comma-separated list of up to 100 values of up to 256 characters
/// without control characters (empty items are ignored).
fn value_list() -> Value {
    json!({
        "type": "string",
        "pattern": format!("^[^,{CTRL}]{{0,256}}(?:,[^,{CTRL}]{{0,256}}){{0,99}}(?!\\n)$"),
    })
}

/// Any JSON whose strings and keys hold no NUL character (what a
/// PostgreSQL `jsonb` column stores).
fn json_value() -> Value {
    json!({
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": r"^[^\u0000]*$"},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            {"$ref": "#/components/schemas/JsonObject"},
        ],
        "description": "Any JSON without NUL characters in its strings and keys.",
    })
}

/// A JSON object whose strings and keys hold no NUL character.
fn json_object() -> Value {
    json!({
        "type": "object",
        "propertyNames": {"pattern": r"^[^\u0000]*$"},
        "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        "description": "A JSON object without NUL characters in its strings and keys.",
    })
}

/// Merges `add`'s keys into the object at `pointer`, if there is one.
fn merge(doc: &mut Value, pointer: &str, add: Value) {
    if let (Some(Value::Object(to)), Value::Object(add)) = (doc.pointer_mut(pointer), add) {
        to.extend(add);
    }
}

/// Replaces the value at `pointer`, if there is one.
fn replace(doc: &mut Value, pointer: &str, with: Value) {
    if let Some(v) = doc.pointer_mut(pointer) {
        *v = with;
    }
}

/// The request bodies' schemas.
fn bodies(doc: &mut Value) {
    let s = "/components/schemas";
    if let Some(Value::Object(schemas)) = doc.pointer_mut(s) {
        schemas.insert("JsonValue".into(), json_value());
        schemas.insert("JsonObject".into(), json_object());
    }
    let p = format!("{s}/NewAlert/properties");
    merge(doc, &format!("{p}/alert_type"), short(limits::ALERT_TYPE));
    merge(doc, &format!("{p}/title"), short(limits::TITLE));
    merge(doc, &format!("{p}/message"), text(limits::MESSAGE));
    merge(
        doc,
        &format!("{p}/tags"),
        json!({"maxItems": limits::TAGS, "items": {"type": "string"}}),
    );
    merge(doc, &format!("{p}/tags/items"), short(limits::TAG));
    merge(
        doc,
        &format!("{p}/audience"),
        json!({"maxItems": limits::AUDIENCE, "items": target()}),
    );
    merge(doc, &format!("{p}/dedup_key"), short(limits::DEDUP_KEY));
    merge(
        doc,
        &format!("{p}/expires_at"),
        json!({
            "description": "When it stops being shown; must be in the future.",
            "examples": ["2999-12-31T00:00:00Z"],
        }),
    );
    replace(
        doc,
        &format!("{p}/metadata"),
        json!({
            "allOf": [{"$ref": "#/components/schemas/JsonObject"}],
            "description": "Free JSON object of at most 16 KiB, without NUL characters.",
        }),
    );
    for f in ["type", "id"] {
        merge(
            doc,
            &format!("{s}/Resource/properties/{f}"),
            short(limits::RESOURCE),
        );
    }
    // `warning` is read as `medium`.
    merge(
        doc,
        &format!("{s}/Severity"),
        json!({"enum": ["info", "low", "medium", "warning", "high", "critical"]}),
    );
    new_rule(doc);
    let p = format!("{s}/Subscription/properties");
    merge(doc, &format!("{p}/alert_type"), plain(1, 100));
    merge(doc, &format!("{p}/channels"), json!({"minItems": 1}));
    let p = format!("{s}/NewRoute/properties");
    merge(doc, &format!("{p}/name"), short(100));
    for f in ["alert_types", "tags"] {
        merge(
            doc,
            &format!("{p}/{f}"),
            json!({"maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 200}}),
        );
    }
    if let Some(Value::Array(variants)) = doc.pointer_mut(&format!("{s}/Destination/oneOf")) {
        for v in variants {
            let kind = v
                .pointer("/properties/kind/enum/0")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match kind.as_str() {
                "slack" => merge(v, "/properties/webhook_url", url()),
                "webhook" => merge(v, "/properties/url", url()),
                "email" => merge(
                    v,
                    "/properties/addresses",
                    json!({"minItems": 1, "maxItems": 50, "items": email().as_object().map(|o| {
                        let mut o = o.clone();
                        o.insert("type".into(), "string".into());
                        o
                    })}),
                ),
                _ => {}
            }
        }
    }
    let p = format!("{s}/Recipient/properties");
    merge(doc, &format!("{p}/email"), email());
    merge(doc, &format!("{p}/slack_id"), token(1, 256));
    merge(doc, &format!("{p}/webhook_url"), url());
    let zones: Vec<Value> = alertkit_core::time_zone_names()
        .map(Value::from)
        .chain([Value::Null])
        .collect();
    merge(doc, &format!("{p}/time_zone"), json!({ "enum": zones }));
    let p = format!("{s}/BroadcastBody/properties");
    merge(
        doc,
        &format!("{p}/message"),
        json!({"minLength": 1, "maxLength": 4096, "pattern": format!("[^{WS}]")}),
    );
    merge(
        doc,
        &format!("{p}/level"),
        json!({"enum": ["info", "warning", "error", null]}),
    );
    let p = format!("{s}/DisconnectBody/properties");
    merge(
        doc,
        &format!("{p}/user_id"),
        json!({"minLength": 1, "maxLength": 256}),
    );
    merge(
        doc,
        &format!("{p}/retry_after_secs"),
        json!({ "maximum": crate::http::live::MAX_HOLD_SECS }),
    );
}

/// `NewRule`: one variant per kind, each with its own conditions.
fn new_rule(doc: &mut Value) {
    let pointer = "/components/schemas/NewRule";
    let Some(Value::Object(base)) = doc.pointer(pointer).cloned() else {
        return;
    };
    if !base.contains_key("properties") {
        return; // already split by kind
    }
    let mut base = Value::Object(base);
    let description = base.get("description").cloned();
    merge(&mut base, "/properties/name", short(200));
    for f in ["for_secs", "cooldown_secs"] {
        merge(
            &mut base,
            &format!("/properties/{f}"),
            json!({ "maximum": MAX_RULE_SECS }),
        );
    }
    if let Value::Object(o) = &mut base {
        o.remove("description");
    }
    let no_nul = json!({"type": "string", "pattern": r"^[^\u0000]*$"});
    let threshold = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["metric", "op", "value"],
        "properties": {
            "metric": {"type": "string", "pattern": format!(r"^[^\u0000]*[^\u0000{WS}][^\u0000]*$"),
                       "description": "The metric's name (not blank)."},
            "op": {"type": "string", "enum": [">", ">=", "<", "<=", "==", "!="]},
            "value": {"type": "number", "description": "The threshold."},
            "labels": {"type": "object", "propertyNames": no_nul, "additionalProperties": no_nul,
                       "description": "Only samples with these labels."},
            "for_evaluations": {"type": "integer", "minimum": 0, "maximum": u32::MAX,
                                "description": "Breaching evaluations in a row before it fires (default 1)."},
            "audience": {"type": "array", "items": no_nul,
                         "description": "Audience templates (`user:{assignee}`)."},
        },
        "description": "A threshold rule's conditions.",
    });
    let sla = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "at_risk_secs": {"type": "integer", "minimum": 0, "maximum": u64::MAX,
                             "description": "How long before its deadline an item is at risk (default 3600)."},
            "audience": {"type": "array", "items": no_nul,
                         "description": "Audience templates (`user:{assignee}`)."},
        },
        "description": "An SLA rule's conditions.",
    });
    let event = json!({"$ref": "#/components/schemas/JsonObject"});
    let variants: Vec<Value> = [("threshold", threshold), ("sla", sla), ("event", event)]
        .into_iter()
        .map(|(kind, conditions)| {
            let mut v = base.clone();
            replace(
                &mut v,
                "/properties/kind",
                json!({"type": "string", "enum": [kind]}),
            );
            replace(&mut v, "/properties/conditions", conditions);
            v
        })
        .collect();
    let mut rule = Map::new();
    rule.insert("oneOf".into(), Value::Array(variants));
    if let Some(d) = description {
        rule.insert("description".into(), d);
    }
    replace(doc, pointer, Value::Object(rule));
}

/// An error answer.
fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// Query and path parameters, and the answers every operation can give.
fn operations(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.pointer_mut("/paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Value::Object(item) = item else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                continue;
            }
            operation(path, op);
        }
    }
}

fn operation(path: &str, op: &mut Value) {
    let uuid_ids = path.starts_with("/api/alerts/")
        || path.starts_with("/api/notify/routes/")
        || path.starts_with("/api/deliveries/");
    let mut has_query = false;
    let mut has_id = false;
    if let Some(Value::Array(params)) = op.get_mut("parameters") {
        for param in params.iter_mut() {
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let place = param
                .get("in")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let schema = match (place.as_str(), name.as_str()) {
                ("path", "id") if uuid_ids => Some(json!({"type": "string", "format": "uuid"})),
                ("query", "limit") if path.starts_with("/api/alerts") => {
                    Some(json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}))
                }
                ("query", "limit") if path.starts_with("/api/deliveries") => {
                    Some(json!({"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES}))
                }
                ("query", "since" | "until") => Some(json!({
                    "type": "string", "format": "date-time", "pattern": date_time(),
                })),
                ("query", "severity") => Some(severity_list()),
                ("query", "min_severity") => Some(severity_one()),
                ("query", "alert_type" | "tag" | "product_code") => Some(value_list()),
                ("query", "unread_only" | "include_dismissed") => {
                    Some(json!({"type": "string", "enum": ["true", "false", "1", "0", ""]}))
                }
                ("query", "alert_id") => Some(json!({"type": "string", "format": "uuid"})),
                ("query", "status") if path.starts_with("/api/deliveries") => Some(
                    json!({"type": "string", "enum": ["pending", "in_flight", "sent", "dead"]}),
                ),
                ("query", "cursor") if path.starts_with("/api/alerts") => Some(json!({
                    "type": "string", "format": "alertkit-cursor",
                })),
                _ => None,
            };
            if let Some(schema) = schema {
                param["schema"] = schema;
            }
            has_query |= place == "query";
            has_id |= place == "path";
        }
    }
    let has_body = op.get("requestBody").is_some();
    let authenticated = op.get("security").is_none();
    let body_required = op
        .pointer("/requestBody/required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(Value::Object(responses)) = op.get_mut("responses") else {
        return;
    };
    let mut add = |code: &str, description: &str| {
        responses
            .entry(code.to_owned())
            .or_insert_with(|| error(description));
    };
    if has_query || has_body {
        add(
            "400",
            "Malformed request: a query value or a body that is not JSON",
        );
    }
    if has_id {
        add("404", "No such item");
    }
    if authenticated {
        add("403", "The token lacks the permission this needs");
    }
    if has_body {
        add("413", "Body over 64 KiB");
        add("422", "Invalid content");
    }
    if body_required {
        add("415", "Content-Type is not application/json");
    }
}

/// Times: [`date_time`]'s pattern on every `date-time` string.
fn times(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("format").and_then(Value::as_str) == Some("date-time") {
                o.insert("pattern".into(), date_time().into());
            }
            o.values_mut().for_each(times);
        }
        Value::Array(a) => a.iter_mut().for_each(times),
        _ => {}
    }
}

/// Unsigned integers: their real range instead of the signed `format`
/// utoipa writes (`u32` as `int32` would refuse 2^31 and above).
fn unsigned(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let unsigned_int = o.get("type").and_then(Value::as_str) == Some("integer")
                && o.get("minimum").and_then(Value::as_u64) == Some(0);
            if unsigned_int {
                let max = match o.get("format").and_then(Value::as_str) {
                    Some("int32") => Some(Value::from(u32::MAX)),
                    Some("int64") => Some(Value::from(u64::MAX)),
                    _ => None,
                };
                if let Some(max) = max {
                    o.remove("format");
                    o.entry("maximum").or_insert(max);
                }
            }
            o.values_mut().for_each(unsigned);
        }
        Value::Array(a) => a.iter_mut().for_each(unsigned),
        _ => {}
    }
}

/// Writes the handlers' rules into `doc` (an OpenAPI document as JSON).
pub(crate) fn constrain(doc: &mut Value) {
    unsigned(doc);
    times(doc);
    bodies(doc);
    operations(doc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    fn doc() -> Value {
        serde_json::to_value(crate::http::openapi::ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn new_rule_is_split_by_kind_once() {
        let mut v = doc();
        constrain(&mut v);
        constrain(&mut v);
        let variants = v["components"]["schemas"]["NewRule"]["oneOf"]
            .as_array()
            .unwrap();
        let kinds: Vec<&Value> = variants
            .iter()
            .map(|v| &v["properties"]["kind"]["enum"][0])
            .collect();
        assert_eq!(kinds, ["threshold", "sla", "event"]);
        assert_eq!(variants[0]["properties"]["name"]["maxLength"], 200);
    }
}
