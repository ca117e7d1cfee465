//! SCIM filters and sort orders as MongoDB queries. The attributes
//! identity providers look resources up by (`userName`, `externalId`,
//! `emails.value`, `displayName`, `meta.lastModified`) map to indexed
//! fields, lower-cased shadows where SCIM compares case-insensitively, so
//! those lookups never scan a collection.

use bson::{Bson, Document, doc};
use chrono::DateTime;

use super::docs::stored_key;
use crate::domain::MemberStatus;
use crate::protocol::filter::{AttrPath, CompValue, CompareOp, Filter, FilterError};
use crate::protocol::schema::{AttrType, ResourceKind, resolve};

/// Where a SCIM attribute lives in a stored document.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    /// Compared as stored (ids, externalId: caseExact).
    Exact(&'static str),
    /// A lower-cased shadow of a case-insensitive attribute.
    Lowered(&'static str),
    /// A BSON date (meta.created, meta.lastModified).
    Date(&'static str),
    /// `active`, derived from the member's status.
    Active,
    /// Any other attribute inside the stored SCIM document.
    Attribute {
        path: String,
        ty: AttrType,
        case_exact: bool,
    },
}

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError::Invalid(message.into())
}

fn display(path: &AttrPath) -> String {
    let mut out = String::new();
    if let Some(urn) = &path.urn {
        out.push_str(urn);
        out.push(':');
    }
    out.push_str(&path.name);
    if let Some(sub) = &path.sub_attr {
        out.push('.');
        out.push_str(sub);
    }
    out
}

fn is(name: &str, canonical: &str) -> bool {
    name.eq_ignore_ascii_case(canonical)
}

/// Maps `path` (relative to `parent` inside a value filter) to its field.
fn field(
    kind: ResourceKind,
    path: &AttrPath,
    parent: Option<&AttrPath>,
) -> Result<Field, FilterError> {
    if let Some(parent) = parent {
        let full = AttrPath {
            urn: parent.urn.clone(),
            name: parent.name.clone(),
            sub_attr: Some(path.name.clone()),
        };
        return generic_field(kind, &full);
    }
    let sub = path.sub_attr.as_deref();
    let name = path.name.as_str();
    let core = path.urn.as_deref().is_none_or(|urn| {
        let core = match kind {
            ResourceKind::User => crate::protocol::schema::USER_SCHEMA,
            ResourceKind::Group => crate::protocol::schema::GROUP_SCHEMA,
        };
        urn.eq_ignore_ascii_case(core)
    });
    if core {
        match (kind, sub) {
            (_, None) if is(name, "id") => return Ok(Field::Exact("_id")),
            (_, None) if is(name, "externalId") => return Ok(Field::Exact("external_id")),
            (_, None) if is(name, "displayName") => return Ok(Field::Lowered("display_name_lc")),
            (_, Some(sub)) if is(name, "meta") && is(sub, "created") => {
                return Ok(Field::Date("created_at"));
            }
            (_, Some(sub)) if is(name, "meta") && is(sub, "lastModified") => {
                return Ok(Field::Date("updated_at"));
            }
            (ResourceKind::User, None) if is(name, "userName") => {
                return Ok(Field::Lowered("user_name_lc"));
            }
            (ResourceKind::User, None) if is(name, "active") => return Ok(Field::Active),
            (ResourceKind::User, None) if is(name, "emails") => {
                return Ok(Field::Lowered("emails_lc"));
            }
            (ResourceKind::User, Some(sub)) if is(name, "emails") && is(sub, "value") => {
                return Ok(Field::Lowered("emails_lc"));
            }
            (ResourceKind::User, _) if is(name, "groups") => {
                return Err(invalid(
                    "filtering users by groups is not supported; filter groups by id instead",
                ));
            }
            (ResourceKind::Group, _) if is(name, "members") => {
                return Err(invalid("filtering groups by members is not supported"));
            }
            _ => {}
        }
    }
    generic_field(kind, path)
}

fn generic_field(kind: ResourceKind, path: &AttrPath) -> Result<Field, FilterError> {
    let resolved = resolve(kind, path)
        .ok_or_else(|| invalid(format!("unknown attribute `{}`", display(path))))?;
    if kind == ResourceKind::Group
        || resolved.attribute.mutability == crate::protocol::schema::Mutability::ReadOnly
    {
        // Groups keep no free-form attributes, and read-only attributes are
        // computed, not stored.
        return Err(invalid(format!(
            "filtering on `{}` is not supported",
            display(path)
        )));
    }
    let mut stored = String::from("scim.");
    if resolved.extension {
        stored.push_str(stored_key(resolved.schema.id));
        stored.push('.');
    }
    stored.push_str(resolved.attribute.name);
    let leaf = match resolved.sub_attribute {
        Some(sub) => {
            stored.push('.');
            stored.push_str(sub.name);
            sub
        }
        None => {
            // A complex attribute compared as a whole compares its `value`.
            if resolved.attribute.ty == AttrType::Complex {
                stored.push_str(".value");
                resolved
                    .attribute
                    .sub_attributes
                    .iter()
                    .find(|a| a.name == "value")
                    .ok_or_else(|| {
                        invalid(format!("`{}` cannot be compared as a whole", display(path)))
                    })?
            } else {
                resolved.attribute
            }
        }
    };
    Ok(Field::Attribute {
        path: stored,
        ty: leaf.ty,
        case_exact: leaf.case_exact,
    })
}

pub(super) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `{$regex, $options}` rather than a BSON regular expression value: it
/// means the same to MongoDB, and the development server only understands
/// this form.
fn regex(pattern: String, case_insensitive: bool) -> Bson {
    let mut condition = doc! { "$regex": pattern };
    if case_insensitive {
        condition.insert("$options", "i");
    }
    Bson::Document(condition)
}

fn json_number(number: &serde_json::Number) -> Bson {
    match number.as_i64() {
        Some(int) => Bson::Int64(int),
        None => Bson::Double(number.as_f64().unwrap_or(f64::NAN)),
    }
}

/// `{field: condition}` for a string comparison.
fn string_condition(field: &str, op: CompareOp, value: &str, case_insensitive: bool) -> Document {
    let anchored = |prefix: &str, suffix: &str| {
        regex(
            format!("{prefix}{}{suffix}", escape_regex(value)),
            case_insensitive,
        )
    };
    let condition: Bson = match op {
        CompareOp::Eq if !case_insensitive => Bson::String(value.to_owned()),
        CompareOp::Eq => anchored("^", "$"),
        CompareOp::Ne if !case_insensitive => doc! { "$ne": value }.into(),
        CompareOp::Ne => doc! { "$not": anchored("^", "$") }.into(),
        CompareOp::Co => anchored("", ""),
        CompareOp::Sw => anchored("^", ""),
        CompareOp::Ew => anchored("", "$"),
        CompareOp::Gt => doc! { "$gt": value }.into(),
        CompareOp::Ge => doc! { "$gte": value }.into(),
        CompareOp::Lt => doc! { "$lt": value }.into(),
        CompareOp::Le => doc! { "$lte": value }.into(),
    };
    doc! { field: condition }
}

fn ordered_condition(field: &str, op: CompareOp, value: Bson) -> Result<Document, FilterError> {
    let operator = match op {
        CompareOp::Eq => return Ok(doc! { field: value }),
        CompareOp::Ne => "$ne",
        CompareOp::Gt => "$gt",
        CompareOp::Ge => "$gte",
        CompareOp::Lt => "$lt",
        CompareOp::Le => "$lte",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            return Err(invalid("co, sw and ew compare strings only"));
        }
    };
    Ok(doc! { field: { operator: value } })
}

fn compare(
    field: Field,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<Document, FilterError> {
    let name = display(path);
    if matches!(value, CompValue::Null) {
        let name = match &field {
            Field::Exact(f) | Field::Lowered(f) | Field::Date(f) => (*f).to_owned(),
            Field::Attribute { path, .. } => path.clone(),
            Field::Active => return Err(invalid("`active` is never null")),
        };
        return match op {
            CompareOp::Eq => Ok(doc! { name: Bson::Null }),
            CompareOp::Ne => Ok(doc! { name: { "$ne": Bson::Null } }),
            _ => Err(invalid(format!(
                "`{}` cannot be compared with null using that operator",
                display(path)
            ))),
        };
    }
    match field {
        Field::Active => {
            let CompValue::Bool(wanted) = value else {
                return Err(invalid("`active` compares with true or false"));
            };
            let wanted = match op {
                CompareOp::Eq => *wanted,
                CompareOp::Ne => !*wanted,
                _ => return Err(invalid("`active` supports eq and ne only")),
            };
            let inactive = MemberStatus::Inactive.as_str();
            Ok(if wanted {
                doc! { "status": { "$ne": inactive } }
            } else {
                doc! { "status": inactive }
            })
        }
        Field::Exact(stored) => match value {
            CompValue::Str(text) => Ok(string_condition(stored, op, text, false)),
            _ => Err(invalid(format!("`{name}` compares with strings"))),
        },
        Field::Lowered(stored) => match value {
            CompValue::Str(text) => Ok(string_condition(stored, op, &text.to_lowercase(), false)),
            _ => Err(invalid(format!("`{name}` compares with strings"))),
        },
        Field::Date(stored) => {
            let CompValue::Str(text) = value else {
                return Err(invalid(format!("`{name}` compares with a dateTime string")));
            };
            let at = DateTime::parse_from_rfc3339(text).map_err(|_| {
                invalid(format!(
                    "`{text}` is not a dateTime such as 2024-01-31T12:00:00Z"
                ))
            })?;
            ordered_condition(
                stored,
                op,
                Bson::DateTime(bson::DateTime::from_chrono(at.to_utc())),
            )
        }
        Field::Attribute {
            path: stored,
            ty,
            case_exact,
        } => match (ty, value) {
            (AttrType::Boolean, CompValue::Bool(flag)) => match op {
                CompareOp::Eq | CompareOp::Ne => {
                    ordered_condition(&stored, op, Bson::Boolean(*flag))
                }
                _ => Err(invalid(format!("`{name}` is a boolean: use eq or ne"))),
            },
            (AttrType::Integer | AttrType::Decimal, CompValue::Num(number)) => {
                ordered_condition(&stored, op, json_number(number))
            }
            (
                AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
                CompValue::Str(text),
            ) => Ok(string_condition(&stored, op, text, !case_exact)),
            _ => Err(invalid(format!(
                "`{name}` cannot be compared with that value"
            ))),
        },
    }
}

fn present(field: Field) -> Document {
    let stored = match field {
        Field::Active => return doc! {},
        Field::Exact(f) | Field::Lowered(f) | Field::Date(f) => f.to_owned(),
        Field::Attribute { path, .. } => path,
    };
    doc! { stored: { "$exists": true, "$nin": [Bson::Null, "", []] } }
}

/// Compiles a SCIM filter to a MongoDB query on `kind`'s collection.
pub fn compile(kind: ResourceKind, filter: &Filter) -> Result<Document, FilterError> {
    compile_in(kind, filter, None)
}

fn compile_in(
    kind: ResourceKind,
    filter: &Filter,
    parent: Option<&AttrPath>,
) -> Result<Document, FilterError> {
    Ok(match filter {
        Filter::And(left, right) => {
            doc! { "$and": [compile_in(kind, left, parent)?, compile_in(kind, right, parent)?] }
        }
        Filter::Or(left, right) => {
            doc! { "$or": [compile_in(kind, left, parent)?, compile_in(kind, right, parent)?] }
        }
        Filter::Not(inner) => doc! { "$nor": [compile_in(kind, inner, parent)?] },
        Filter::Present(path) => present(field(kind, path, parent)?),
        Filter::Compare { path, op, value } => {
            compare(field(kind, path, parent)?, path, *op, value)?
        }
        Filter::ValuePath { path, filter } => {
            if parent.is_some() {
                return Err(invalid("value filters cannot nest"));
            }
            value_path(kind, path, filter)?
        }
    })
}

/// Most alternatives a value filter may expand to.
const MAX_VALUE_FILTER_TERMS: usize = 64;

/// A condition on one element field, possibly negated.
type Literal<'f> = (&'f Filter, bool);

/// The value filter in disjunctive normal form, negations pushed to the
/// comparisons: `$elemMatch` then needs no `$and`, `$or` or `$nor` inside,
/// which not every server accepts there.
fn disjunctive(filter: &Filter, negated: bool) -> Result<Vec<Vec<Literal<'_>>>, FilterError> {
    let terms = match (filter, negated) {
        (Filter::And(a, b), false) | (Filter::Or(a, b), true) => {
            let left = disjunctive(a, negated)?;
            let right = disjunctive(b, negated)?;
            let mut terms = Vec::new();
            for l in &left {
                for r in &right {
                    terms.push(l.iter().chain(r).copied().collect());
                }
            }
            terms
        }
        (Filter::Or(a, b), false) | (Filter::And(a, b), true) => {
            let mut terms = disjunctive(a, negated)?;
            terms.extend(disjunctive(b, negated)?);
            terms
        }
        (Filter::Not(inner), _) => disjunctive(inner, !negated)?,
        (Filter::Compare { .. } | Filter::Present(_), _) => vec![vec![(filter, negated)]],
        (Filter::ValuePath { .. }, _) => return Err(invalid("value filters cannot nest")),
    };
    if terms.len() > MAX_VALUE_FILTER_TERMS {
        return Err(invalid(
            "the value filter is too complex; simplify its and/or/not combination",
        ));
    }
    Ok(terms)
}

/// The negation of a field condition.
fn negate(condition: Bson) -> Bson {
    match condition {
        Bson::Document(mut operators) if operators.keys().all(|k| k.starts_with('$')) => {
            if operators.len() == 1 {
                if let Some(inner) = operators.remove("$not") {
                    return inner;
                }
                if let Some(value) = operators.remove("$ne") {
                    return value;
                }
            }
            doc! { "$not": operators }.into()
        }
        value => doc! { "$ne": value }.into(),
    }
}

fn value_path(
    kind: ResourceKind,
    path: &AttrPath,
    filter: &Filter,
) -> Result<Document, FilterError> {
    let resolved = resolve(kind, path)
        .ok_or_else(|| invalid(format!("unknown attribute `{}`", display(path))))?;
    if !resolved.attribute.multi_valued || resolved.attribute.ty != AttrType::Complex {
        return Err(invalid(format!(
            "`{}` is not a multi-valued complex attribute",
            display(path)
        )));
    }
    let mut stored = String::from("scim.");
    if resolved.extension {
        stored.push_str(stored_key(resolved.schema.id));
        stored.push('.');
    }
    stored.push_str(resolved.attribute.name);
    let prefix = format!("{stored}.");
    let mut alternatives = Vec::new();
    for term in disjunctive(filter, false)? {
        let mut element = Document::new();
        for (leaf, negated) in term {
            for (key, condition) in compile_in(kind, leaf, Some(path))? {
                let key = key.strip_prefix(&prefix).map(str::to_owned).unwrap_or(key);
                let condition = if negated {
                    negate(condition)
                } else {
                    condition
                };
                merge_condition(&mut element, key, condition)?;
            }
        }
        alternatives.push(doc! { stored.as_str(): { "$elemMatch": element } });
    }
    Ok(match alternatives.len() {
        1 => alternatives.remove(0),
        _ => doc! { "$or": alternatives },
    })
}

/// Adds `key: condition` to an element query, combining operator documents
/// on the same field.
fn merge_condition(
    element: &mut Document,
    key: String,
    condition: Bson,
) -> Result<(), FilterError> {
    let Some(existing) = element.get_mut(&key) else {
        element.insert(key, condition);
        return Ok(());
    };
    let (Bson::Document(current), Bson::Document(extra)) = (existing, &condition) else {
        return Err(invalid(format!(
            "two equality conditions on `{key}` in one value filter are not supported"
        )));
    };
    for (operator, value) in extra {
        if !operator.starts_with('$') || current.contains_key(operator) {
            return Err(invalid(format!(
                "two `{operator}` conditions on `{key}` in one value filter are not supported"
            )));
        }
        current.insert(operator.clone(), value.clone());
    }
    Ok(())
}

/// The sort for `sortBy`/`sortOrder`, always ending on `_id` so that pages
/// are stable.
pub fn sort(
    kind: ResourceKind,
    by: Option<&AttrPath>,
    descending: bool,
) -> Result<Document, FilterError> {
    let direction = if descending { -1 } else { 1 };
    let Some(path) = by else {
        return Ok(doc! { "_id": 1 });
    };
    let stored = match field(kind, path, None)? {
        Field::Exact(f) | Field::Lowered(f) | Field::Date(f) => f.to_owned(),
        Field::Active => "status".to_owned(),
        Field::Attribute { path, .. } => path,
    };
    let mut sort = doc! { stored.clone(): direction };
    if stored != "_id" {
        sort.insert("_id", direction);
    }
    Ok(sort)
}
