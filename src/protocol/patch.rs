//! PATCH (RFC 7644 §3.5.2): add, replace and remove, with and without
//! paths, value-filter paths, URN paths and the shapes identity providers
//! really send (Entra ID's `Replace`, dotted pathless keys, member removal
//! by value). Operations apply to a copy of the resource, which is then
//! validated and written as a whole, so a request applies entirely or not
//! at all.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, matches, parse_patch_path};
use super::schema::{
    Mutability, Resolved, ResourceError, ResourceKind, check_value_count, extension_urn, resolve,
    whole_extension,
};
use super::{ScimError, ScimType};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations one PATCH request may carry. Identity providers send a
/// few (Entra ID batches group member changes in tens); a thousand keeps
/// every real client well inside it while bounding what one request can
/// make the server apply inside a transaction. A single operation may
/// still add any number of group `members`.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    /// The raw path, for messages.
    pub raw_path: Option<String>,
    pub value: Option<Value>,
}

fn invalid_syntax(detail: impl Into<String>) -> ScimError {
    ScimError::new(ScimType::InvalidSyntax, detail)
}

fn invalid_value(detail: impl Into<String>) -> ScimError {
    ScimError::new(ScimType::InvalidValue, detail)
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::new(ScimType::NoTarget, detail)
}

fn mutability(detail: impl Into<String>) -> ScimError {
    ScimError::new(ScimType::Mutability, detail)
}

/// Validates a PatchOp body. Names are matched case-insensitively, as
/// Entra ID capitalises them.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid_syntax("a PATCH body is a PatchOp object"))?;
    let operations = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("Operations"))
        .map(|(_, value)| value)
        .ok_or_else(|| invalid_syntax("a PATCH body needs `Operations`"))?;
    let operations = operations
        .as_array()
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| invalid_syntax("`Operations` is a non-empty array"))?;
    if operations.len() > MAX_OPERATIONS {
        return Err(invalid_value(format!(
            "a PATCH request takes at most {MAX_OPERATIONS} operations; this one has {}; \
             split it into several requests",
            operations.len()
        )));
    }
    operations.iter().map(parse_operation).collect()
}

fn parse_operation(raw: &Value) -> Result<Operation, ScimError> {
    let object = raw.as_object().ok_or_else(|| {
        invalid_syntax("each operation is an object with `op`, `path` and `value`")
    })?;
    let field = |name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let op = match field("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        other => {
            return Err(invalid_syntax(format!(
                "`op` must be add, remove or replace, not {}",
                other.map_or_else(|| "missing".to_owned(), |o| format!("`{o}`"))
            )));
        }
    };
    let raw_path = match field("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) if path.trim().is_empty() => None,
        Some(Value::String(path)) => Some(path.trim().to_owned()),
        Some(_) => {
            return Err(ScimError::new(
                ScimType::InvalidPath,
                "`path` must be a string",
            ));
        }
    };
    let path = raw_path
        .as_deref()
        .map(|raw| {
            parse_patch_path(raw)
                .map_err(|err| ScimError::new(ScimType::InvalidPath, err.to_string()))
        })
        .transpose()?;
    let value = field("value").filter(|value| !value.is_null()).cloned();
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(no_target("remove needs a `path`")),
        (Op::Add | Op::Replace, None, Some(Value::Object(_))) => Ok(()),
        (Op::Add | Op::Replace, None, _) => Err(invalid_value(
            "an add or replace without `path` needs an object `value` of attributes",
        )),
        (Op::Add | Op::Replace, Some(_), None) => {
            Err(invalid_value("add and replace need a `value`"))
        }
        _ => Ok(()),
    }?;
    Ok(Operation {
        op,
        path,
        raw_path,
        value,
    })
}

/// The password a PATCH sets, if any (the last one wins). Found before the
/// transaction so it can be hashed outside it: hashing is slow on purpose.
pub fn new_password(operations: &[Operation]) -> Option<String> {
    let is_password = |name: &str| name.eq_ignore_ascii_case("password");
    operations
        .iter()
        .rev()
        .filter(|operation| operation.op != Op::Remove)
        .find_map(|operation| match (&operation.path, &operation.value) {
            (Some(path), Some(Value::String(password)))
                if is_password(&path.attr.name) && path.attr.sub_attr.is_none() =>
            {
                Some(password.clone())
            }
            (None, Some(Value::Object(values))) => values
                .iter()
                .find(|(key, _)| is_password(key))
                .and_then(|(_, value)| value.as_str())
                .map(str::to_owned),
            _ => None,
        })
}

/// Applies `operations` in order to a copy of `resource`.
pub fn apply(
    kind: ResourceKind,
    resource: &Value,
    operations: &[Operation],
) -> Result<Value, ScimError> {
    let mut patched = resource.as_object().cloned().ok_or_else(|| {
        ScimError::new(ScimType::InvalidValue, "the resource is not a JSON object")
    })?;
    for operation in operations {
        apply_one(kind, &mut patched, operation)?;
        // After each operation, so that a request cannot grow an attribute
        // far past the limit before validation sees it.
        check_value_counts(kind, &patched)?;
    }
    Ok(Value::Object(patched))
}

/// Refuses a resource with more values in a multi-valued attribute than its
/// kind allows (none are multi-valued in the extensions).
fn check_value_counts(kind: ResourceKind, resource: &Map<String, Value>) -> Result<(), ScimError> {
    if kind.max_values().is_none() {
        return Ok(());
    }
    for attribute in kind
        .core_schema()
        .attributes
        .iter()
        .filter(|a| a.multi_valued)
    {
        if let Some(Value::Array(items)) = resource.get(attribute.name) {
            check_value_count(kind, attribute.name, items.len()).map_err(|err| match err {
                ResourceError::InvalidValue(detail) => invalid_value(detail),
                other => invalid_value(other.to_string()),
            })?;
        }
    }
    Ok(())
}

fn apply_one(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    operation: &Operation,
) -> Result<(), ScimError> {
    match &operation.path {
        Some(path) => apply_at(
            kind,
            resource,
            operation.op,
            path,
            operation.value.as_ref(),
            operation.raw_path.as_deref(),
        ),
        None => {
            let Some(Value::Object(values)) = &operation.value else {
                return Err(invalid_value(
                    "an add or replace without `path` needs an object `value`",
                ));
            };
            for (key, value) in values {
                if let Some(urn) = extension_urn(kind, key) {
                    // `"urn:…:enterprise:2.0:User": { "department": "…" }`
                    let Value::Object(inner) = value else {
                        return Err(invalid_value(format!(
                            "`{key}` holds an object of extension attributes"
                        )));
                    };
                    for (name, value) in inner {
                        let path = qualified(urn, name)?;
                        apply_at(kind, resource, operation.op, &path, Some(value), Some(name))?;
                    }
                    continue;
                }
                // Entra ID sends dotted (`name.givenName`) and URN-qualified
                // keys here; both are paths.
                let path = parse_patch_path(key)
                    .map_err(|_| invalid_value(format!("`{key}` is not an attribute")))?;
                if path.value_filter.is_some() {
                    return Err(invalid_value(format!(
                        "`{key}`: value filters belong in `path`"
                    )));
                }
                if value.is_null() {
                    continue;
                }
                apply_at(kind, resource, operation.op, &path, Some(value), Some(key))?;
            }
            Ok(())
        }
    }
}

fn qualified(urn: &str, name: &str) -> Result<PatchPath, ScimError> {
    parse_patch_path(&format!("{urn}:{name}"))
        .map_err(|_| invalid_value(format!("`{name}` is not an attribute of {urn}")))
}

/// The object an attribute lives in: the resource, or its extension object.
fn container<'a>(
    resource: &'a mut Map<String, Value>,
    resolved: &Resolved,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    if !resolved.extension {
        return Some(resource);
    }
    let key = resolved.schema.id;
    if create && !resource.contains_key(key) {
        resource.insert(key.to_owned(), Value::Object(Map::new()));
    }
    resource.get_mut(key)?.as_object_mut()
}

fn describe(raw: Option<&str>, resolved: &Resolved) -> String {
    raw.map_or_else(|| resolved.attribute.name.to_owned(), str::to_owned)
}

fn apply_at(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
    raw: Option<&str>,
) -> Result<(), ScimError> {
    if let Some(urn) = whole_extension(kind, &path.attr) {
        return apply_to_extension(kind, resource, op, urn, value, path);
    }
    let resolved = resolve(kind, &path.attr).ok_or_else(|| {
        ScimError::new(
            ScimType::InvalidPath,
            format!(
                "`{}` is not an attribute of this resource",
                raw.unwrap_or(&path.attr.name)
            ),
        )
    })?;
    let name = describe(raw, &resolved);
    check_mutability(resource, &resolved, path, value, &name)?;
    let attribute = resolved.attribute;
    let sub_name = path
        .sub_attr
        .as_deref()
        .or(path.attr.sub_attr.as_deref())
        .map(|sub| canonical_sub(&resolved, sub))
        .transpose()?;
    let Some(target) = container(resource, &resolved, op != Op::Remove) else {
        // Removing from an extension the resource does not have.
        return match path.value_filter {
            Some(_) => Err(no_target(format!("`{name}` matches nothing"))),
            None => Ok(()),
        };
    };

    if let Some(filter) = &path.value_filter {
        return apply_filtered(
            kind,
            target,
            op,
            &path.attr,
            attribute.name,
            filter,
            sub_name,
            value,
            &name,
        );
    }

    match (op, sub_name, attribute.multi_valued) {
        (Op::Remove, None, true) => {
            match value {
                // Entra ID: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
                Some(value) => {
                    let doomed: HashSet<String> = as_array(value).iter().map(value_key).collect();
                    if let Some(Value::Array(items)) = target.get_mut(attribute.name) {
                        items.retain(|item| !doomed.contains(&value_key(item)));
                    }
                }
                None => {
                    target.remove(attribute.name);
                }
            }
            Ok(())
        }
        (Op::Remove, None, false) => {
            target.remove(attribute.name);
            Ok(())
        }
        (Op::Remove, Some(sub), _) => {
            match target.get_mut(attribute.name) {
                Some(Value::Object(inner)) => {
                    inner.remove(sub);
                }
                Some(Value::Array(items)) => {
                    for item in items.iter_mut() {
                        if let Some(item) = item.as_object_mut() {
                            item.remove(sub);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        }
        (Op::Add | Op::Replace, None, true) => {
            let Some(value) = value else {
                return Err(invalid_value(format!("`{name}` needs a value")));
            };
            let new_items = as_array(value);
            // One new value made primary takes the mark from the values
            // already there (RFC 7643 §2.4). Several new primaries are the
            // client's mistake, left for validation to refuse.
            let mut new_primaries = new_items.iter().filter(|item| is_primary(item));
            let winner = match (new_primaries.next(), new_primaries.next()) {
                (Some(winner), None) => Some(winner.clone()),
                _ => None,
            };
            let items = match (op, target.get_mut(attribute.name)) {
                (Op::Add, Some(Value::Array(items))) => {
                    let mut present: HashSet<String> = items.iter().map(whole_key).collect();
                    for item in new_items {
                        if present.insert(whole_key(&item)) {
                            items.push(item);
                        }
                    }
                    items
                }
                _ => {
                    target.insert(attribute.name.to_owned(), Value::Array(new_items));
                    match target.get_mut(attribute.name) {
                        Some(Value::Array(items)) => items,
                        _ => return Ok(()),
                    }
                }
            };
            if let Some(winner) = winner
                && let Some(keep) = items.iter().position(|item| item == &winner)
            {
                clear_primary_except(items, |i| i == keep);
            }
            Ok(())
        }
        (Op::Add | Op::Replace, None, false) => {
            let Some(value) = value else {
                return Err(invalid_value(format!("`{name}` needs a value")));
            };
            match (target.get_mut(attribute.name), value) {
                // A complex value merges: sub-attributes not given stay.
                (Some(Value::Object(existing)), Value::Object(new)) => {
                    for (key, sub_value) in new {
                        let key = canonical_sub(&resolved, key)?;
                        existing.insert(key.to_owned(), sub_value.clone());
                    }
                }
                _ => {
                    target.insert(attribute.name.to_owned(), value.clone());
                }
            }
            Ok(())
        }
        (Op::Add | Op::Replace, Some(sub), multi) => {
            let Some(value) = value else {
                return Err(invalid_value(format!("`{name}` needs a value")));
            };
            if multi {
                return Err(ScimError::new(
                    ScimType::InvalidPath,
                    format!(
                        "`{name}`: select values of a multi-valued attribute with a filter, e.g. emails[type eq \"work\"].value"
                    ),
                ));
            }
            let entry = target
                .entry(attribute.name.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Some(inner) = entry.as_object_mut() {
                inner.insert(sub.to_owned(), value.clone());
            }
            Ok(())
        }
    }
}

/// A path naming a whole extension: `add` and `replace` set the
/// attributes the value names, `remove` removes the extension.
fn apply_to_extension(
    kind: ResourceKind,
    resource: &mut Map<String, Value>,
    op: Op,
    urn: &'static str,
    value: Option<&Value>,
    path: &PatchPath,
) -> Result<(), ScimError> {
    if path.value_filter.is_some() || path.sub_attr.is_some() {
        return Err(ScimError::new(
            ScimType::InvalidPath,
            format!("`{urn}` takes no filter"),
        ));
    }
    match (op, value) {
        (Op::Remove, _) => {
            resource.remove(urn);
            Ok(())
        }
        (Op::Add | Op::Replace, Some(Value::Object(values))) => {
            // Even an empty value assigns the extension.
            resource
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            for (name, value) in values {
                // The value may repeat the extension's `schemas`.
                if name.eq_ignore_ascii_case("schemas") || value.is_null() {
                    continue;
                }
                let attribute = qualified(urn, name)?;
                apply_at(kind, resource, op, &attribute, Some(value), Some(name))?;
            }
            Ok(())
        }
        _ => Err(invalid_value(format!(
            "`{urn}` takes an object of its attributes"
        ))),
    }
}

fn canonical_sub(resolved: &Resolved, sub: &str) -> Result<&'static str, ScimError> {
    resolved
        .attribute
        .sub_attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(sub))
        .map(|a| a.name)
        .ok_or_else(|| {
            ScimError::new(
                ScimType::InvalidPath,
                format!("`{}` has no sub-attribute `{sub}`", resolved.attribute.name),
            )
        })
}

fn as_array(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.iter().filter(|v| !v.is_null()).cloned().collect(),
        other => vec![other.clone()],
    }
}

/// A value as a hash key: two values of a multi-valued attribute are the
/// same when their `value` sub-attributes are (or, for values without one,
/// the values themselves).
fn value_key(item: &Value) -> String {
    match item.get("value") {
        Some(value) => format!("v{}", canonical_json(value)),
        None => whole_key(item),
    }
}

/// A value as a hash key with the meaning of `==`.
fn whole_key(item: &Value) -> String {
    format!("w{}", canonical_json(item))
}

/// JSON with object keys sorted: equal values (which `==` compares without
/// regard to key order) give equal text.
fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, inner)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(inner, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, inner) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(inner, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// `true`, or the string `"True"` as Entra ID sends it.
fn is_true(flag: &Value) -> bool {
    match flag {
        Value::Bool(flag) => *flag,
        Value::String(flag) => flag.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn is_primary(item: &Value) -> bool {
    item.get("primary").is_some_and(is_true)
}

#[allow(clippy::too_many_arguments)]
fn apply_filtered(
    kind: ResourceKind,
    target: &mut Map<String, Value>,
    op: Op,
    path: &AttrPath,
    canonical: &'static str,
    filter: &Filter,
    sub: Option<&'static str>,
    value: Option<&Value>,
    name: &str,
) -> Result<(), ScimError> {
    let items: Vec<Value> = match target.get(canonical) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let value_path = Filter::ValuePath {
        path: AttrPath {
            urn: path.urn.clone(),
            name: path.name.clone(),
            sub_attr: None,
        },
        filter: Box::new(filter.clone()),
    };
    let mut hits = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let mut probe = Map::new();
        probe.insert(canonical.to_owned(), Value::Array(vec![item.clone()]));
        let probe = wrap_for(path, probe);
        let hit = matches(&value_path, &probe, kind)
            .map_err(|err| ScimError::new(ScimType::InvalidPath, err.to_string()))?;
        if hit {
            hits.push(index);
        }
    }
    let mut items = items;
    let mut hit = vec![false; items.len()];
    for &i in &hits {
        hit[i] = true;
    }
    if hits.is_empty() {
        // Entra ID adds `emails[type eq "work"].value` to a user without a
        // work email: create the element the filter describes.
        if let (Op::Add | Op::Replace, Some(sub), Some(value)) = (op, sub, value)
            && let Some(mut element) = element_from_filter(filter)
        {
            element.insert(sub.to_owned(), value.clone());
            if sub == "primary" && is_true(value) {
                clear_primary_except(&mut items, |_| false);
            }
            items.push(Value::Object(element));
            target.insert(canonical.to_owned(), Value::Array(items));
            return Ok(());
        }
        return Err(no_target(format!("`{name}` matches no value")));
    }
    match (op, sub) {
        (Op::Remove, None) => {
            let mut index = 0;
            items.retain(|_| {
                let keep = !hit[index];
                index += 1;
                keep
            });
        }
        (Op::Remove, Some(sub)) => {
            for &i in &hits {
                if let Some(object) = items[i].as_object_mut() {
                    object.remove(sub);
                }
            }
        }
        (Op::Add | Op::Replace, Some(sub)) => {
            let Some(value) = value else {
                return Err(invalid_value(format!("`{name}` needs a value")));
            };
            for &i in &hits {
                if let Some(object) = items[i].as_object_mut() {
                    object.insert(sub.to_owned(), value.clone());
                }
            }
            // `emails[type eq "home"].primary: true` moves the mark to the
            // selected values (RFC 7643 §2.4); if the filter selected
            // several, validation refuses the result.
            if sub == "primary" && is_true(value) {
                clear_primary_except(&mut items, |i| hit[i]);
            }
        }
        (Op::Add | Op::Replace, None) => {
            let Some(Value::Object(new)) = value else {
                return Err(invalid_value(format!("`{name}` needs an object value")));
            };
            for &i in &hits {
                if op == Op::Replace {
                    items[i] = Value::Object(new.clone());
                } else if let Some(object) = items[i].as_object_mut() {
                    for (key, v) in new {
                        object.insert(key.clone(), v.clone());
                    }
                }
            }
            if new.get("primary").is_some_and(is_true) {
                clear_primary_except(&mut items, |i| hit[i]);
            }
        }
    }
    if items.is_empty() {
        target.remove(canonical);
    } else {
        target.insert(canonical.to_owned(), Value::Array(items));
    }
    Ok(())
}

/// Clears `primary` on every value whose index `keep` rejects.
fn clear_primary_except(items: &mut [Value], keep: impl Fn(usize) -> bool) {
    for (i, item) in items.iter_mut().enumerate() {
        if !keep(i)
            && is_primary(item)
            && let Some(object) = item.as_object_mut()
        {
            object.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Extension attributes are probed under their URN, as stored.
fn wrap_for(path: &AttrPath, probe: Map<String, Value>) -> Value {
    match &path.urn {
        Some(urn) if !urn.to_ascii_lowercase().contains(":core:") => {
            let mut outer = Map::new();
            outer.insert(urn.clone(), Value::Object(probe));
            Value::Object(outer)
        }
        _ => Value::Object(probe),
    }
}

/// `type eq "work"` (and conjunctions of such) as an element.
fn element_from_filter(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub_attr.is_none() && path.urn.is_none() => {
            let value = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            let mut element = Map::new();
            element.insert(path.name.clone(), value);
            Some(element)
        }
        Filter::And(left, right) => {
            let mut element = element_from_filter(left)?;
            element.extend(element_from_filter(right)?);
            Some(element)
        }
        _ => None,
    }
}

/// Read-only attributes cannot be written, except `id` set to its own
/// value (Okta includes it in group renames).
fn check_mutability(
    resource: &Map<String, Value>,
    resolved: &Resolved,
    path: &PatchPath,
    value: Option<&Value>,
    name: &str,
) -> Result<(), ScimError> {
    let sub = path.attr.sub_attr.as_deref().or(path.sub_attr.as_deref());
    let leaf = match sub {
        Some(sub) => resolved
            .attribute
            .sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(sub))
            .map_or(resolved.attribute.mutability, |a| a.mutability),
        None => resolved.attribute.mutability,
    };
    if leaf != Mutability::ReadOnly {
        return Ok(());
    }
    if resolved.attribute.name == "id" && value.is_some_and(|v| Some(v) == resource.get("id")) {
        return Ok(());
    }
    Err(mutability(format!("`{name}` is read-only")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(body: Value) -> Vec<Operation> {
        parse_request(&body).expect("valid PatchOp")
    }

    fn patch(resource: Value, operations: Value) -> Result<Value, ScimError> {
        apply(
            ResourceKind::User,
            &resource,
            &ops(json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": operations })),
        )
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "bjensen@example.com",
            "name": { "givenName": "Barbara", "familyName": "Jensen" },
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "value": "babs@home.example", "type": "home" }
            ],
            "active": true
        })
    }

    fn scim_type(err: &ScimError) -> Option<ScimType> {
        Some(err.scim_type)
    }

    #[test]
    fn okta_deactivation_without_path() {
        let out = patch(
            user(),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .expect("patched");
        assert_eq!(out["active"], false);
    }

    #[test]
    fn entra_capitalised_ops_and_string_booleans_pass_through() {
        let out = patch(
            user(),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        )
        .expect("patched");
        // Validation afterwards turns "False" into false.
        assert_eq!(out["active"], "False");
    }

    #[test]
    fn dotted_pathless_keys_set_sub_attributes() {
        let out = patch(
            user(),
            json!([{ "op": "replace", "value": { "name.givenName": "Babs" } }]),
        )
        .expect("patched");
        assert_eq!(out["name"]["givenName"], "Babs");
        assert_eq!(out["name"]["familyName"], "Jensen");
    }

    #[test]
    fn value_filter_paths() {
        let out = patch(
            user(),
            json!([{ "op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@corp.example" }]),
        )
        .expect("patched");
        assert_eq!(out["emails"][0]["value"], "b@corp.example");
        assert_eq!(out["emails"][1]["value"], "babs@home.example");
    }

    #[test]
    fn a_missing_filtered_element_is_created_for_add() {
        let out = patch(
            user(),
            json!([{ "op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100" }]),
        )
        .expect("patched");
        assert_eq!(
            out["phoneNumbers"],
            json!([{ "type": "mobile", "value": "+1 555 0100" }])
        );
    }

    #[test]
    fn remove_by_filter_and_no_target() {
        let out = patch(
            user(),
            json!([{ "op": "remove", "path": "emails[type eq \"home\"]" }]),
        )
        .expect("patched");
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(1));
        let err = patch(
            user(),
            json!([{ "op": "remove", "path": "emails[type eq \"other\"]" }]),
        )
        .expect_err("nothing");
        assert_eq!(scim_type(&err), Some(ScimType::NoTarget));
        let err =
            parse_request(&json!({ "Operations": [{ "op": "remove" }] })).expect_err("no path");
        assert_eq!(scim_type(&err), Some(ScimType::NoTarget));
    }

    #[test]
    fn urn_paths_and_manager_as_a_bare_string() {
        let out = patch(
            user(),
            json!([
                { "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m1" },
                { "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D" }
            ]),
        )
        .expect("patched");
        let ext = &out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(ext["manager"], "m1");
        assert_eq!(ext["department"], "R&D");
        let out = patch(
            out,
            json!([{ "op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager" }]),
        )
        .expect("patched");
        assert!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
                .get("manager")
                .is_none()
        );
    }

    #[test]
    fn adding_a_primary_value_clears_the_others() {
        let out = patch(
            user(),
            json!([{ "op": "add", "path": "emails", "value": [{ "value": "new@example.com", "primary": true }] }]),
        )
        .expect("patched");
        let primaries: Vec<&Value> = out["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["primary"] == true)
            .collect();
        assert_eq!(primaries.len(), 1);
        assert_eq!(primaries[0]["value"], "new@example.com");
    }

    fn primary_values(out: &Value, attribute: &str) -> Vec<Value> {
        out[attribute]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| is_primary(e))
            .map(|e| e["value"].clone())
            .collect()
    }

    #[test]
    fn a_filtered_primary_moves_the_mark() {
        for (path, value) in [
            (r#"emails[type eq "home"].primary"#, json!(true)),
            (
                r#"emails[value eq "babs@home.example"].primary"#,
                json!("True"),
            ),
        ] {
            let out = patch(
                user(),
                json!([{ "op": "replace", "path": path, "value": value }]),
            )
            .expect("patched");
            assert_eq!(primary_values(&out, "emails"), [json!("babs@home.example")]);
            assert_eq!(out["emails"][0]["primary"], false, "{path}");
        }
        // Setting it false touches no other value.
        let out = patch(
            user(),
            json!([{ "op": "replace", "path": r#"emails[type eq "home"].primary"#, "value": false }]),
        )
        .expect("patched");
        assert_eq!(
            primary_values(&out, "emails"),
            [json!("bjensen@example.com")]
        );
    }

    #[test]
    fn a_primary_element_created_from_its_filter_takes_the_mark() {
        let out = patch(
            user(),
            json!([{ "op": "add", "path": r#"emails[type eq "other"].primary"#, "value": true }]),
        )
        .expect("patched");
        assert_eq!(out["emails"][0]["primary"], false);
        assert_eq!(
            out["emails"][2],
            json!({ "type": "other", "primary": true })
        );
    }

    #[test]
    fn several_new_primaries_are_left_for_validation_to_refuse() {
        for op in ["add", "replace"] {
            let out = patch(
                user(),
                json!([{ "op": op, "path": "emails", "value": [
                    { "value": "a@example.com", "primary": true },
                    { "value": "b@example.com", "primary": true }
                ] }]),
            )
            .expect("patched");
            assert!(primary_values(&out, "emails").len() >= 2, "{op}: {out}");
        }
    }

    #[test]
    fn adding_a_value_already_there_changes_nothing() {
        let out = patch(
            user(),
            json!([{ "op": "add", "path": "emails", "value": [
                { "primary": true, "type": "work", "value": "bjensen@example.com" }
            ] }]),
        )
        .expect("patched");
        assert_eq!(out["emails"], user()["emails"]);
    }

    #[test]
    fn removal_by_value_compares_values() {
        let out = patch(
            user(),
            json!([{ "op": "remove", "path": "emails", "value": [{ "value": "babs@home.example" }] }]),
        )
        .expect("patched");
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(1));
        assert_eq!(out["emails"][0]["value"], "bjensen@example.com");
    }

    #[test]
    fn keys_ignore_the_order_of_object_members() {
        assert_eq!(
            whole_key(&json!({ "a": 1, "b": [true, { "y": null, "x": "s" }] })),
            whole_key(&json!({ "b": [true, { "x": "s", "y": null }], "a": 1 }))
        );
        assert_ne!(
            whole_key(&json!({ "a": 1 })),
            whole_key(&json!({ "a": 1.0 }))
        );
        assert_eq!(
            value_key(&json!({ "value": "x", "type": "work" })),
            value_key(&json!({ "value": "x" }))
        );
        assert_ne!(value_key(&json!({ "value": "x" })), value_key(&json!("x")));
    }

    #[test]
    fn operations_and_values_are_bounded() {
        let op = json!({ "op": "replace", "path": "title", "value": "x" });
        let body = |n: usize| json!({ "Operations": vec![op.clone(); n] });
        assert_eq!(
            parse_request(&body(MAX_OPERATIONS)).map(|o| o.len()).ok(),
            Some(MAX_OPERATIONS)
        );
        let err = parse_request(&body(MAX_OPERATIONS + 1)).expect_err("too many");
        assert_eq!(scim_type(&err), Some(ScimType::InvalidValue));
        assert!(err.to_string().contains("at most 1000 operations"), "{err}");

        let many: Vec<Value> = (0..=crate::protocol::schema::MAX_USER_VALUES)
            .map(|n| json!({ "value": format!("{n}@example.com") }))
            .collect();
        let err = patch(
            user(),
            json!([{ "op": "add", "path": "emails", "value": many }]),
        )
        .expect_err("too many values");
        assert_eq!(scim_type(&err), Some(ScimType::InvalidValue));
        // Groups' members are not bounded.
        let group = json!({ "displayName": "G", "members": [] });
        let members: Vec<Value> = (0..500)
            .map(|n| json!({ "value": format!("m{n}") }))
            .collect();
        let out = apply(
            ResourceKind::Group,
            &group,
            &ops(json!({ "Operations": [{ "op": "add", "path": "members", "value": members }] })),
        )
        .expect("members are unbounded");
        assert_eq!(out["members"].as_array().map(Vec::len), Some(500));
    }

    #[test]
    fn read_only_attributes_are_refused() {
        let err = patch(
            user(),
            json!([{ "op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z" }]),
        )
        .expect_err("read-only");
        assert_eq!(scim_type(&err), Some(ScimType::Mutability));
        let err = patch(
            user(),
            json!([{ "op": "replace", "path": "groups", "value": [] }]),
        )
        .expect_err("read-only");
        assert_eq!(scim_type(&err), Some(ScimType::Mutability));
    }

    #[test]
    fn a_new_password_is_found_before_applying() {
        let operations = ops(json!({ "Operations": [
            { "op": "replace", "value": { "Password": "first" } },
            { "op": "replace", "path": "password", "value": "second" },
            { "op": "replace", "path": "title", "value": "x" }
        ] }));
        assert_eq!(new_password(&operations).as_deref(), Some("second"));
        let none =
            ops(json!({ "Operations": [{ "op": "replace", "path": "title", "value": "x" }] }));
        assert_eq!(new_password(&none), None);
    }

    #[test]
    fn bad_requests() {
        for body in [
            json!([]),
            json!({ "Operations": [] }),
            json!({ "Operations": [{ "op": "move", "path": "userName" }] }),
            json!({ "Operations": [{ "op": "replace", "value": "x" }] }),
        ] {
            assert!(parse_request(&body).is_err(), "{body}");
        }
        let err = parse_request(
            &json!({ "Operations": [{ "op": "add", "path": "emails[type eq", "value": 1 }] }),
        )
        .expect_err("bad path");
        assert_eq!(scim_type(&err), Some(ScimType::InvalidPath));
        let err = patch(
            user(),
            json!([{ "op": "add", "path": "nonsense", "value": 1 }]),
        )
        .expect_err("unknown");
        assert_eq!(scim_type(&err), Some(ScimType::InvalidPath));
    }

    #[test]
    fn operations_apply_in_order_on_a_copy() {
        let original = user();
        let out = patch(
            original.clone(),
            json!([
                { "op": "replace", "path": "userName", "value": "first" },
                { "op": "replace", "path": "userName", "value": "second" }
            ]),
        )
        .expect("patched");
        assert_eq!(out["userName"], "second");
        assert_eq!(original["userName"], "bjensen@example.com");
    }
}
