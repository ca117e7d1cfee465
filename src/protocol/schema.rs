//! SCIM schemas (RFC 7643): attribute definitions as data, and what the
//! server derives from them: discovery documents, attribute resolution,
//! validation of incoming resources, and projection of outgoing ones.
//!
//! Decisions where the RFCs leave room:
//!
//! - The common attributes `id`, `externalId` and `meta` (RFC 7643 §3.1)
//!   resolve, validate and project for every resource type as if they were
//!   core attributes, but the `/Schemas` documents leave them out, as the
//!   RFC's own representations in §8.7.1 do: they belong to no schema.
//! - A path that names a whole extension (`urn:...:enterprise:2.0:User`,
//!   however a parser splits it) resolves to no attribute; [`whole_extension`]
//!   recognises it, and [`project`] honours it in `attributes` and
//!   `excludedAttributes`.
//! - Unqualified names resolve among the core attributes only; extension
//!   attributes need their schema URN.
//! - Canonical values are advisory (RFC 7643 §2.3.1) and are not enforced,
//!   except `members.type` of a Group, which the server acts on.
//! - A value of the wrong JSON type is `invalidValue`, as RFC 7644 §3.12
//!   defines it ("not compatible with the ... attribute type");
//!   `invalidSyntax` is kept for a body that is not a JSON object.

use serde_json::{Map, Value, json};

use super::filter::AttrPath;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const MUSTER_GROUP_SCHEMA: &str = "urn:muster:params:scim:schemas:extension:muster:2.0:Group";

/// The schema of `/Schemas` documents (RFC 7643 §7).
pub const SCHEMA_DOCUMENT_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema of `/ResourceTypes` documents (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The schema of the `/ServiceProviderConfig` document (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Longest string value accepted in a resource body, in characters: far
/// beyond any real name, address or id, and small enough that no single
/// attribute can bloat a stored document.
pub const MAX_STRING_CHARS: usize = 2048;

/// Longest `binary` value accepted, in characters. A base64 X.509
/// certificate with a 4096-bit key already passes 2048.
pub const MAX_BINARY_CHARS: usize = 16 * 1024;

/// Longest piece of client input quoted back in an error message.
const MAX_QUOTED_CHARS: usize = 80;

/// Most values a multi-valued attribute of a User may hold. Identity
/// providers send a handful (Okta and Entra ID one to three emails, phone
/// numbers, addresses); a hundred leaves ample room for roles and
/// entitlements while bounding each member document, its indexed email
/// shadow and the work a PATCH does on one attribute. Group `members` are
/// not bounded: they are documents of their own.
pub const MAX_USER_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// The resource type's id and name, `User` or `Group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint relative to the SCIM base, `/Users` or `/Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }

    /// The core schema of the resource type.
    pub fn core_schema(self) -> &'static Schema {
        &SCHEMAS[self.schema_range().start]
    }

    /// The schema extensions of the resource type (none of them required).
    pub fn extension_schemas(self) -> &'static [Schema] {
        let range = self.schema_range();
        &SCHEMAS[range.start + 1..range.end]
    }

    /// The core schema then the extensions: where they sit in `SCHEMAS`.
    fn schema_range(self) -> std::ops::Range<usize> {
        match self {
            ResourceKind::User => 0..2,
            ResourceKind::Group => 2..4,
        }
    }

    fn all_schemas(self) -> &'static [Schema] {
        &SCHEMAS[self.schema_range()]
    }

    /// Most values one multi-valued attribute of this kind may hold.
    pub fn max_values(self) -> Option<usize> {
        match self {
            ResourceKind::User => Some(MAX_USER_VALUES),
            ResourceKind::Group => None,
        }
    }
}

/// Refuses more values for a multi-valued attribute than `kind` allows
/// (`label` names the attribute).
pub fn check_value_count(
    kind: ResourceKind,
    label: &str,
    count: usize,
) -> Result<(), ResourceError> {
    match kind.max_values() {
        Some(max) if count > max => Err(invalid(format!(
            "`{}` may hold at most {max} values; this request gives it {count}",
            quote(label)
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }

    /// How error messages name the JSON a value of this type must be.
    fn expected(self) -> &'static str {
        match self {
            AttrType::String => "a string",
            AttrType::Boolean => "a boolean",
            AttrType::Decimal => "a number",
            AttrType::Integer => "an integer",
            AttrType::DateTime => "an RFC 3339 date-time string",
            AttrType::Binary => "a base64-encoded string",
            AttrType::Reference => "a URI string",
            AttrType::Complex => "an object",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// Canonical spelling, e.g. `userName`.
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
    pub description: &'static str,
}

impl Attribute {
    /// The sub-attribute called `name`, compared case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute> {
        find_attribute(self.sub_attributes, name)
    }

    // Builders for the schema data below: an attribute starts as RFC 7643
    // §2.2's defaults (single-valued, optional, case-insensitive, readWrite,
    // returned by default, not unique) and says only how it differs.

    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Attribute {
        Attribute {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }

    const fn multi(mut self) -> Attribute {
        self.multi_valued = true;
        self
    }

    const fn required(mut self) -> Attribute {
        self.required = true;
        self
    }

    const fn case_exact(mut self) -> Attribute {
        self.case_exact = true;
        self
    }

    const fn read_only(mut self) -> Attribute {
        self.mutability = Mutability::ReadOnly;
        self
    }

    const fn immutable(mut self) -> Attribute {
        self.mutability = Mutability::Immutable;
        self
    }

    const fn write_only(mut self) -> Attribute {
        self.mutability = Mutability::WriteOnly;
        self
    }

    const fn returned(mut self, returned: Returned) -> Attribute {
        self.returned = returned;
        self
    }

    const fn unique_in_server(mut self) -> Attribute {
        self.uniqueness = Uniqueness::Server;
        self
    }

    const fn canonical(mut self, values: &'static [&'static str]) -> Attribute {
        self.canonical_values = values;
        self
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::String, description)
}

const fn boolean(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::Boolean, description)
}

const fn date_time(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::DateTime, description)
}

const fn binary(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::Binary, description)
}

const fn reference(
    name: &'static str,
    reference_types: &'static [&'static str],
    description: &'static str,
) -> Attribute {
    let mut attribute = Attribute::new(name, AttrType::Reference, description);
    attribute.reference_types = reference_types;
    attribute
}

const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [Attribute],
) -> Attribute {
    let mut attribute = Attribute::new(name, AttrType::Complex, description);
    attribute.sub_attributes = sub_attributes;
    attribute
}

// Sub-attributes shared by the multi-valued attributes of RFC 7643 §2.4.

const fn display_sub() -> Attribute {
    string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    )
}

const fn type_sub(canonical_values: &'static [&'static str]) -> Attribute {
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(canonical_values)
}

const fn primary_sub() -> Attribute {
    boolean(
        "primary",
        "A Boolean value indicating the 'primary' or preferred attribute value for this \
         attribute. The primary attribute value 'true' MUST appear no more than once.",
    )
}

#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// The attribute called `name`, compared case-insensitively (schema
    /// attributes only; see [`common_attributes`]).
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        find_attribute(self.attributes, name)
    }
}

// The schema data. One line per attribute: type and name, description,
// then how it differs from the defaults of RFC 7643 §2.2. Characteristics
// follow RFC 7643 §8.7.1 unless a comment says otherwise; descriptions are
// shortened from it.

/// RFC 7643 §3.1: part of every resource, defined by no schema.
#[rustfmt::skip]
static COMMON_ATTRIBUTES: [Attribute; 3] = [
    string("id", "Unique identifier of the resource, issued by the service provider.")
        .case_exact().read_only().returned(Returned::Always).unique_in_server(),
    string("externalId", "Identifier of the resource as defined by the provisioning client.").case_exact(),
    complex("meta", "Resource metadata.", &[
        string("resourceType", "The name of the resource type of the resource.").case_exact().read_only(),
        date_time("created", "When the resource was added to the service provider.").read_only(),
        date_time("lastModified", "When the resource was last updated at the service provider.").read_only(),
        reference("location", &["uri"], "The URI of the resource.").case_exact().read_only(),
        string("version", "The version (entity tag) of the resource.").case_exact().read_only(),
    ]).read_only(),
];

#[rustfmt::skip]
const USER_ATTRIBUTES: &[Attribute] = &[
    string("userName", "Unique identifier for the User, typically used to sign in.").required().unique_in_server(),
    complex("name", "The components of the user's real name.", &[
        string("formatted", "The full name, formatted for display (e.g., 'Ms. Barbara J Jensen, III')."),
        string("familyName", "The family name of the User, or last name in most Western languages."),
        string("givenName", "The given name of the User, or first name in most Western languages."),
        string("middleName", "The middle name(s) of the User."),
        string("honorificPrefix", "The honorific prefix(es) of the User (e.g., 'Ms.')."),
        string("honorificSuffix", "The honorific suffix(es) of the User (e.g., 'III')."),
    ]),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life, e.g., 'Bob' for 'Robert'."),
    reference("profileUrl", &["external"], "A URL of a page representing the User's online profile."),
    string("title", "The user's title, such as 'Vice President'."),
    string("userType", "The relationship between the organization and the user, e.g., 'Employee'."),
    string("preferredLanguage", "The User's preferred written or spoken language, e.g., 'en-US'."),
    string("locale", "The User's default location for localizing dates, currency and numbers."),
    string("timezone", "The User's time zone in IANA format, e.g., 'America/Los_Angeles'."),
    boolean("active", "The User's administrative status."),
    string("password", "The User's cleartext password, to set or reset it.").write_only().returned(Returned::Never),
    complex("emails", "Email addresses for the User.", &[
        string("value", "Email address for the User."),
        display_sub(),
        type_sub(&["work", "home", "other"]),
        primary_sub(),
    ]).multi(),
    complex("phoneNumbers", "Phone numbers for the User.", &[
        string("value", "Phone number of the User."),
        display_sub(),
        type_sub(&["work", "home", "mobile", "fax", "pager", "other"]),
        primary_sub(),
    ]).multi(),
    complex("ims", "Instant messaging addresses for the User.", &[
        string("value", "Instant messaging address for the User."),
        display_sub(),
        type_sub(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
        primary_sub(),
    ]).multi(),
    complex("photos", "URLs of photos of the User.", &[
        reference("value", &["external"], "URL of a photo of the User."),
        display_sub(),
        type_sub(&["photo", "thumbnail"]),
        primary_sub(),
    ]).multi(),
    complex("addresses", "Physical mailing addresses for the User.", &[
        string("formatted", "The full mailing address, formatted for display or a mailing label."),
        string("streetAddress", "The full street address component."),
        string("locality", "The city or locality component."),
        string("region", "The state or region component."),
        string("postalCode", "The zip code or postal code component."),
        string("country", "The country name component."),
        type_sub(&["work", "home", "other"]),
        primary_sub(),
    ]).multi(),
    complex("groups", "The groups the User belongs to, directly or through nested groups.", &[
        string("value", "The identifier of the User's group.").read_only(),
        // RFC 7643 §8.7.1 lists both resource types here.
        reference("$ref", &["User", "Group"], "The URI of the Group resource.").read_only(),
        display_sub().read_only(),
        type_sub(&["direct", "indirect"]).read_only(),
    ]).multi().read_only(),
    complex("entitlements", "Entitlements of the User: things the User has.", &[
        string("value", "The value of an entitlement."),
        display_sub(),
        type_sub(&[]),
        primary_sub(),
    ]).multi(),
    complex("roles", "Roles of the User: who the User is, e.g., 'Student', 'Faculty'.", &[
        string("value", "The value of a role."),
        display_sub(),
        type_sub(&[]),
        primary_sub(),
    ]).multi(),
    complex("x509Certificates", "Certificates issued to the User.", &[
        binary("value", "The value of an X.509 certificate, DER encoded then base64 encoded."),
        display_sub(),
        type_sub(&[]),
        primary_sub(),
    ]).multi(),
];

#[rustfmt::skip]
const ENTERPRISE_USER_ATTRIBUTES: &[Attribute] = &[
    string("employeeNumber", "Identifier of the person, typically based on order of hire."),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", "The User's manager: the 'id' of another User.", &[
        string("value", "The id of the SCIM resource representing the User's manager."),
        reference("$ref", &["User"], "The URI of the SCIM resource representing the User's manager."),
        string("displayName", "The displayName of the User's manager.").read_only(),
    ]),
];

#[rustfmt::skip]
const GROUP_ATTRIBUTES: &[Attribute] = &[
    // RFC 7643 has displayName optional and not unique; Muster requires it
    // and keeps it unique within the organization, and advertises that.
    string("displayName", "A human-readable name for the Group, unique in the organization.")
        .required().unique_in_server(),
    complex("members", "The members of the Group.", &[
        string("value", "The identifier of the member.").immutable(),
        reference("$ref", &["User", "Group"], "The URI of the member resource.").immutable(),
        string("type", "The type of the member resource.").canonical(&["User", "Group"]).immutable(),
        display_sub().read_only(),
    ]).multi(),
];

#[rustfmt::skip]
const MUSTER_GROUP_ATTRIBUTES: &[Attribute] = &[
    string("role", "The Muster organization role the group's members hold through it.")
        .canonical(&["owner", "admin", "contributor", "viewer"]).read_only(),
    complex("projectRights", "The project rights the group's members hold through it.", &[
        string("projectId", "The Muster project the rights apply to.").case_exact().read_only(),
        string("rights", "The rights granted on the project.")
            .canonical(&["read", "write", "delete"]).multi().read_only(),
    ]).multi().read_only(),
];

/// Every schema, each resource type's core schema first and its extensions
/// right after it (see `ResourceKind::schema_range`).
#[rustfmt::skip]
static SCHEMAS: [Schema; 4] = [
    Schema { id: USER_SCHEMA, name: "User", description: "User Account", attributes: USER_ATTRIBUTES },
    Schema {
        id: ENTERPRISE_USER_SCHEMA,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: ENTERPRISE_USER_ATTRIBUTES,
    },
    Schema { id: GROUP_SCHEMA, name: "Group", description: "Group", attributes: GROUP_ATTRIBUTES },
    Schema {
        id: MUSTER_GROUP_SCHEMA,
        name: "MusterGroup",
        description: "What a group grants in Muster: the role it maps to and its project rights.",
        attributes: MUSTER_GROUP_ATTRIBUTES,
    },
];

/// A path resolved against a resource type's schemas.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The schema that defines the attribute.
    pub schema: &'static Schema,
    /// Whether that schema is an extension (its attributes live under the
    /// schema URN as a key of the resource).
    pub extension: bool,
    pub attribute: &'static Attribute,
    /// The sub-attribute, when the path names one.
    pub sub_attribute: Option<&'static Attribute>,
}

/// Why a resource body is not acceptable; each maps to one SCIM `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Malformed structure: the body is not a JSON object. SCIM
    /// `invalidSyntax`.
    #[error("{0}")]
    InvalidSyntax(String),
    /// A value that is not allowed (unknown attribute, missing required
    /// attribute, value of the wrong type, bad canonical value, bad
    /// dateTime, string too long). SCIM `invalidValue`.
    #[error("{0}")]
    InvalidValue(String),
    /// An attempt to change an immutable attribute. SCIM `mutability`.
    #[error("{0}")]
    Mutability(String),
}

pub fn schemas() -> &'static [Schema] {
    &SCHEMAS
}

/// The schema whose id is `id` (case-insensitive), for `/Schemas/{id}`.
pub fn schema_by_id(id: &str) -> Option<&'static Schema> {
    SCHEMAS
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(id))
}

/// `id`, `externalId` and `meta`: resolved for every resource type as core
/// attributes, but listed in no `/Schemas` document.
pub fn common_attributes() -> &'static [Attribute] {
    &COMMON_ATTRIBUTES
}

/// The canonical URN of `kind`'s extension that `s` names, compared
/// case-insensitively: for `attributes=urn:...:enterprise:2.0:User` and for
/// PATCH values keyed by an extension URN.
pub fn extension_urn(kind: ResourceKind, s: &str) -> Option<&'static str> {
    kind.extension_schemas()
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(s))
        .map(|schema| schema.id)
}

/// The canonical URN of `kind`'s extension when `path` names that whole
/// extension rather than one of its attributes. Paths are recognised
/// whichever way a parser split them: the URN as `name` alone, or cut at
/// its last colon into `urn` and `name`.
pub fn whole_extension(kind: ResourceKind, path: &AttrPath) -> Option<&'static str> {
    match target(kind, &path_text(path))? {
        Target::WholeSchema {
            schema,
            extension: true,
        } => Some(schema.id),
        _ => None,
    }
}

/// Resolves `path` for `kind` (case-insensitive names, optional URN).
///
/// A path naming a whole schema resolves to `None`; see [`whole_extension`].
pub fn resolve(kind: ResourceKind, path: &AttrPath) -> Option<Resolved> {
    match target(kind, &path_text(path))? {
        Target::Attribute(resolved) => Some(resolved),
        Target::WholeSchema { .. } => None,
    }
}

fn find_attribute(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

/// An attribute of `schema` by name; the core schema also answers for the
/// common attributes.
fn find_in_schema(
    schema: &'static Schema,
    extension: bool,
    name: &str,
) -> Option<&'static Attribute> {
    schema.attribute(name).or_else(|| {
        if extension {
            None
        } else {
            find_attribute(&COMMON_ATTRIBUTES, name)
        }
    })
}

/// What a path or a body key names.
enum Target {
    Attribute(Resolved),
    WholeSchema {
        schema: &'static Schema,
        extension: bool,
    },
}

/// The path as the client wrote it. Resolution works on this text rather
/// than on the parser's split, so `urn:...:2.0:User:name.givenName` means
/// the same however the URN, name and sub-attribute were cut apart (the
/// `2.0` in every SCIM URN contains the dot that separates sub-attributes).
fn path_text(path: &AttrPath) -> String {
    let mut text = String::new();
    if let Some(urn) = &path.urn {
        text.push_str(urn);
        text.push(':');
    }
    text.push_str(&path.name);
    if let Some(sub) = &path.sub_attr {
        text.push('.');
        text.push_str(sub);
    }
    text
}

/// Where an attribute reference points before its names are looked up.
enum Located<'a> {
    /// A URN of one of the resource type's schemas, followed by `:rest`
    /// or by nothing (`rest` is `None`: the whole schema).
    Schema {
        /// Position among `kind.all_schemas()`.
        index: usize,
        schema: &'static Schema,
        extension: bool,
        rest: Option<&'a str>,
    },
    /// A schema URI this resource type does not have.
    Foreign,
    /// No URN: a core (or common) attribute.
    Plain(&'a str),
}

fn locate(kind: ResourceKind, text: &str) -> Located<'_> {
    for (index, schema) in kind.all_schemas().iter().enumerate() {
        let extension = index > 0;
        let Some(head) = text.get(..schema.id.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(schema.id) {
            continue;
        }
        let tail = text.get(schema.id.len()..).unwrap_or_default();
        if tail.is_empty() {
            return Located::Schema {
                index,
                schema,
                extension,
                rest: None,
            };
        }
        if let Some(rest) = tail.strip_prefix(':') {
            return Located::Schema {
                index,
                schema,
                extension,
                rest: Some(rest),
            };
        }
    }
    if looks_like_schema_uri(text) {
        Located::Foreign
    } else {
        Located::Plain(text)
    }
}

/// Schema URIs in the wild: URNs, and Microsoft's
/// `http://schemas.microsoft.com/...` that Entra puts on Groups.
fn looks_like_schema_uri(text: &str) -> bool {
    ["urn:", "http://schemas.", "https://schemas."]
        .iter()
        .any(|prefix| {
            text.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
}

fn target(kind: ResourceKind, text: &str) -> Option<Target> {
    let (schema, extension, attribute_text) = match locate(kind, text) {
        Located::Schema {
            schema,
            extension,
            rest: None,
            ..
        } => {
            return Some(Target::WholeSchema { schema, extension });
        }
        Located::Schema {
            schema,
            extension,
            rest: Some(rest),
            ..
        } => (schema, extension, rest),
        Located::Foreign => return None,
        Located::Plain(text) => (kind.core_schema(), false, text),
    };
    let (name, sub) = match attribute_text.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (attribute_text, None),
    };
    let attribute = find_in_schema(schema, extension, name)?;
    let sub_attribute = match sub {
        Some(sub) => Some(attribute.sub_attribute(sub)?),
        None => None,
    };
    Some(Target::Attribute(Resolved {
        schema,
        extension,
        attribute,
        sub_attribute,
    }))
}

/// Validates and normalizes a POST/PUT body. Returns the resource's
/// client-writable attributes in canonical form, plus the password if one
/// was sent.
///
/// Names are matched case-insensitively and written in canonical case;
/// extension attributes end up in an object under the canonical schema URN,
/// whether they came that way or as URN-qualified top-level keys (Entra's
/// flattened form). `null` means unset; read-only attributes are dropped
/// unread (RFC 7644 §3.5.1); `schemas` and keys naming unknown schemas are
/// ignored. Nothing here knows the stored resource, so immutability is the
/// caller's to enforce.
pub fn normalize_resource(
    kind: ResourceKind,
    body: &Value,
) -> Result<(Map<String, Value>, Option<String>), ResourceError> {
    let Some(body) = body.as_object() else {
        return Err(ResourceError::InvalidSyntax(format!(
            "a {} resource must be a JSON object",
            kind.as_str()
        )));
    };
    let schemas = kind.all_schemas();
    let mut given: Vec<Given> = schemas.iter().map(|_| Given::default()).collect();
    for (key, value) in body {
        if value.is_null() || key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        match locate(kind, key) {
            Located::Foreign => {}
            Located::Plain(text) => {
                if let Some(core) = given.first_mut() {
                    core.add(kind, kind.core_schema(), false, key, text, value)?;
                }
            }
            Located::Schema {
                index,
                schema,
                extension,
                rest: Some(rest),
            } => {
                if let Some(given) = given.get_mut(index) {
                    given.add(kind, schema, extension, key, rest, value)?;
                }
            }
            Located::Schema {
                index,
                schema,
                extension,
                rest: None,
            } => {
                let Value::Object(members) = value else {
                    return Err(invalid(format!(
                        "`{}` must be an object holding that schema's attributes",
                        schema.id
                    )));
                };
                let Some(given) = given.get_mut(index) else {
                    continue;
                };
                for (name, value) in members.iter().filter(|(_, value)| !value.is_null()) {
                    let key = format!("{}:{name}", schema.id);
                    given.add(kind, schema, extension, &key, name, value)?;
                }
            }
        }
    }

    let mut resource = Map::new();
    let mut password = None;
    for ((schema, given), index) in schemas.iter().zip(given).zip(0..) {
        let extension = index > 0;
        let mut attributes = Map::new();
        for (attribute, value) in given.values {
            let label = if extension {
                format!("{}:{}", schema.id, attribute.name)
            } else {
                attribute.name.to_owned()
            };
            match attribute.mutability {
                Mutability::ReadOnly => continue,
                // `password` is the only writeOnly attribute; it is never
                // stored with the resource.
                Mutability::WriteOnly => {
                    password = Some(password_text(&label, &value)?);
                    continue;
                }
                Mutability::ReadWrite | Mutability::Immutable => {}
            }
            if attribute.multi_valued
                && let Value::Array(elements) = &value
            {
                check_value_count(kind, &label, elements.len())?;
            }
            if let Some(value) = normalize_value(attribute, &label, &value)? {
                attributes.insert(attribute.name.to_owned(), value);
            }
        }
        if extension {
            if !attributes.is_empty() {
                check_required(schema, extension, &attributes)?;
                resource.insert(schema.id.to_owned(), Value::Object(attributes));
            }
        } else {
            check_required(schema, extension, &attributes)?;
            resource.extend(attributes);
        }
    }
    Ok((resource, password))
}

/// The values a body gives for one schema's attributes, before validation.
#[derive(Default)]
struct Given {
    values: Vec<(&'static Attribute, Value)>,
}

impl Given {
    /// Records `value` for `attribute_text` (`name` or `name.sub`), which
    /// the body spelled as `key`.
    fn add(
        &mut self,
        kind: ResourceKind,
        schema: &'static Schema,
        extension: bool,
        key: &str,
        attribute_text: &str,
        value: &Value,
    ) -> Result<(), ResourceError> {
        let (name, sub) = match attribute_text.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (attribute_text, None),
        };
        let unknown = || {
            invalid(format!(
                "unknown attribute `{}` for a {} resource",
                quote(key),
                kind.as_str()
            ))
        };
        let attribute = find_in_schema(schema, extension, name).ok_or_else(unknown)?;
        if attribute.mutability == Mutability::ReadOnly {
            // Dropped unread: clients echo back what they were sent.
            return Ok(());
        }
        let value = match sub {
            None => value.clone(),
            // `name.givenName` at the top level: the same as
            // `name: {givenName}`.
            Some(sub) => {
                let sub = attribute.sub_attribute(sub).ok_or_else(unknown)?;
                let mut members = Map::new();
                members.insert(sub.name.to_owned(), value.clone());
                Value::Object(members)
            }
        };
        match self
            .values
            .iter_mut()
            .find(|(known, _)| known.name == attribute.name)
        {
            None => self.values.push((attribute, value)),
            Some((_, current)) => merge_given(current, value, attribute.name)?,
        }
        Ok(())
    }
}

/// Merges a second mention of an attribute into the first: allowed only
/// when both are objects that do not set the same sub-attribute.
fn merge_given(current: &mut Value, more: Value, name: &str) -> Result<(), ResourceError> {
    let given_twice = |what: &str| invalid(format!("`{}` is given more than once", quote(what)));
    let (Value::Object(current), Value::Object(more)) = (current, more) else {
        return Err(given_twice(name));
    };
    for (key, value) in more {
        let clash = current
            .iter()
            .any(|(known, known_value)| known.eq_ignore_ascii_case(&key) && !known_value.is_null());
        if clash {
            return Err(given_twice(&format!("{name}.{key}")));
        }
        current.insert(key, value);
    }
    Ok(())
}

fn invalid(message: String) -> ResourceError {
    ResourceError::InvalidValue(message)
}

/// Client input as quoted in an error message: cut short, so a huge key or
/// value cannot blow up the response.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let mut quoted: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        quoted.push('…');
    }
    quoted
}

fn check_length(label: &str, text: &str) -> Result<(), ResourceError> {
    check_length_at_most(label, text, MAX_STRING_CHARS)
}

fn check_length_at_most(label: &str, text: &str, max_chars: usize) -> Result<(), ResourceError> {
    // The byte length bounds the character count, so most strings skip
    // the count.
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(invalid(format!(
            "`{label}` is longer than {max_chars} characters"
        )));
    }
    Ok(())
}

fn password_text(label: &str, value: &Value) -> Result<String, ResourceError> {
    let Value::String(text) = value else {
        return Err(invalid(format!("`{label}` must be a string")));
    };
    check_length(label, text)?;
    Ok(text.clone())
}

fn check_required(
    schema: &Schema,
    extension: bool,
    attributes: &Map<String, Value>,
) -> Result<(), ResourceError> {
    let required = schema
        .attributes
        .iter()
        .filter(|attribute| attribute.required && attribute.mutability != Mutability::ReadOnly);
    for attribute in required {
        let present = match attributes.get(attribute.name) {
            Some(Value::String(text)) => !text.trim().is_empty(),
            Some(_) => true,
            None => false,
        };
        if !present {
            let label = if extension {
                format!("{}:{}", schema.id, attribute.name)
            } else {
                attribute.name.to_owned()
            };
            return Err(invalid(format!(
                "`{label}` is required and must not be empty"
            )));
        }
    }
    Ok(())
}

/// Validates one attribute's value (`label` is its path for messages).
/// `Ok(None)`: the value amounts to unset (null, empty array, object whose
/// members are all null or read-only).
fn normalize_value(
    attribute: &'static Attribute,
    label: &str,
    value: &Value,
) -> Result<Option<Value>, ResourceError> {
    if !attribute.multi_valued {
        return match value {
            Value::Null => Ok(None),
            Value::Array(_) => Err(invalid(format!(
                "`{label}` is single-valued: it must be {}, not an array",
                attribute.ty.expected()
            ))),
            _ => normalize_single(attribute, label, value),
        };
    }
    let elements = match value {
        Value::Null => return Ok(None),
        Value::Array(elements) => elements.as_slice(),
        // One value where a list is expected is a list of one.
        single => std::slice::from_ref(single),
    };
    let mut normalized = Vec::with_capacity(elements.len());
    for (index, element) in elements.iter().enumerate() {
        let element_label = format!("{label}[{index}]");
        match element {
            Value::Null => {}
            Value::Array(_) => {
                return Err(invalid(format!(
                    "`{element_label}` must be {}, not an array",
                    attribute.ty.expected()
                )));
            }
            _ => normalized.extend(normalize_single(attribute, &element_label, element)?),
        }
    }
    if normalized.is_empty() {
        return Ok(None);
    }
    let primaries = normalized
        .iter()
        .filter(|element| element.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(invalid(format!(
            "at most one value of `{label}` may be primary; {primaries} are"
        )));
    }
    Ok(Some(Value::Array(normalized)))
}

/// Validates one value (a single-valued attribute's, or one element of a
/// multi-valued one's).
fn normalize_single(
    attribute: &'static Attribute,
    label: &str,
    value: &Value,
) -> Result<Option<Value>, ResourceError> {
    let wrong_type = || invalid(format!("`{label}` must be {}", attribute.ty.expected()));
    match attribute.ty {
        AttrType::String | AttrType::Reference => {
            let Value::String(text) = value else {
                return Err(wrong_type());
            };
            check_length(label, text)?;
        }
        AttrType::Binary => {
            let Value::String(text) = value else {
                return Err(wrong_type());
            };
            check_length_at_most(label, text, MAX_BINARY_CHARS)?;
            if !looks_like_base64(text) {
                return Err(wrong_type());
            }
        }
        AttrType::DateTime => {
            let Value::String(text) = value else {
                return Err(wrong_type());
            };
            check_length(label, text)?;
            if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                return Err(invalid(format!(
                    "`{label}` must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z, not `{}`",
                    quote(text)
                )));
            }
        }
        AttrType::Boolean => {
            return match value {
                Value::Bool(_) => Ok(Some(value.clone())),
                // Entra ID sends booleans as "True" and "False".
                Value::String(text) if text.eq_ignore_ascii_case("true") => {
                    Ok(Some(Value::Bool(true)))
                }
                Value::String(text) if text.eq_ignore_ascii_case("false") => {
                    Ok(Some(Value::Bool(false)))
                }
                _ => Err(wrong_type()),
            };
        }
        AttrType::Integer => {
            if !value
                .as_number()
                .is_some_and(|number| number.is_i64() || number.is_u64())
            {
                return Err(wrong_type());
            }
        }
        AttrType::Decimal => {
            if !value.is_number() {
                return Err(wrong_type());
            }
        }
        AttrType::Complex => {
            return match value {
                Value::Object(members) => normalize_complex(attribute, label, members),
                // Entra sends `manager` as the bare id; `emails: ["a@b.c"]`
                // is seen too. A bare scalar is the `value` sub-attribute.
                Value::String(_) | Value::Number(_) | Value::Bool(_)
                    if attribute.sub_attribute("value").is_some() =>
                {
                    let mut members = Map::new();
                    members.insert("value".to_owned(), value.clone());
                    normalize_complex(attribute, label, &members)
                }
                _ => Err(wrong_type()),
            };
        }
    }
    Ok(Some(value.clone()))
}

fn normalize_complex(
    attribute: &'static Attribute,
    label: &str,
    members: &Map<String, Value>,
) -> Result<Option<Value>, ResourceError> {
    let mut normalized = Map::new();
    let mut seen: Vec<&'static str> = Vec::new();
    for (key, value) in members {
        if value.is_null() {
            continue;
        }
        let Some(sub) = attribute.sub_attribute(key) else {
            return Err(invalid(format!(
                "unknown sub-attribute `{}` in `{label}`",
                quote(key)
            )));
        };
        let sub_label = format!("{label}.{}", sub.name);
        if seen.contains(&sub.name) {
            return Err(invalid(format!("`{sub_label}` is given more than once")));
        }
        seen.push(sub.name);
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let Some(mut value) = normalize_value(sub, &sub_label, value)? else {
            continue;
        };
        if enforces_canonical_values(attribute, sub) {
            value = canonical_spelling(sub, &sub_label, &value)?;
        }
        normalized.insert(sub.name.to_owned(), value);
    }
    Ok((!normalized.is_empty()).then_some(Value::Object(normalized)))
}

/// Canonical values are suggestions (RFC 7643 §2.3.1); only a group
/// member's `type` is one the server acts on, so only it is checked.
fn enforces_canonical_values(parent: &Attribute, sub: &Attribute) -> bool {
    parent.name == "members" && sub.name == "type"
}

/// `value` in the canonical spelling of one of `attribute`'s canonical
/// values (`user` → `User`).
fn canonical_spelling(
    attribute: &Attribute,
    label: &str,
    value: &Value,
) -> Result<Value, ResourceError> {
    let text = value.as_str().unwrap_or_default();
    match attribute
        .canonical_values
        .iter()
        .find(|canonical| canonical.eq_ignore_ascii_case(text))
    {
        Some(canonical) => Ok(Value::String((*canonical).to_owned())),
        None => Err(invalid(format!(
            "`{label}` must be one of {}, not `{}`",
            attribute.canonical_values.join(", "),
            quote(text)
        ))),
    }
}

/// Base64 per RFC 4648 §4 or §5, padding and line breaks allowed (PEM
/// bodies are pasted with them).
fn looks_like_base64(text: &str) -> bool {
    text.bytes().all(|byte| {
        byte.is_ascii_alphanumeric()
            || matches!(byte, b'+' | b'/' | b'-' | b'_' | b'=')
            || byte.is_ascii_whitespace()
    })
}

/// Which attributes a response includes (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded_attributes: Vec<AttrPath>,
}

/// Applies `projection` and the `returned` rules to a full resource.
///
/// `schemas` and `returned: always` attributes are always kept, `returned:
/// never` ones never. With `attributes`, only the named attributes (and
/// sub-attributes) are kept; naming an extension URN keeps the whole
/// extension. `excludedAttributes` then removes what it names. Paths that
/// name nothing are ignored, and so are keys of `resource` that no schema
/// defines. An extension left empty is left out.
pub fn project(kind: ResourceKind, resource: &Value, projection: &Projection) -> Value {
    let Some(resource) = resource.as_object() else {
        return resource.clone();
    };
    let rules = Rules {
        requested: Selection::new(kind, &projection.attributes),
        restrict: !projection.attributes.is_empty(),
        excluded: Selection::new(kind, &projection.excluded_attributes),
    };
    let mut projected = Map::new();
    for (key, value) in resource {
        if key.eq_ignore_ascii_case("schemas") {
            projected.insert("schemas".to_owned(), value.clone());
            continue;
        }
        match locate(kind, key) {
            Located::Plain(name) => {
                let core = kind.core_schema();
                let Some(attribute) = find_in_schema(core, false, name) else {
                    continue;
                };
                if let Some(value) = rules.apply(core, attribute, value) {
                    projected.insert(attribute.name.to_owned(), value);
                }
            }
            Located::Schema {
                schema,
                extension: true,
                rest: None,
                ..
            } => {
                let Some(members) = value.as_object() else {
                    continue;
                };
                let mut kept = Map::new();
                for (name, value) in members {
                    let Some(attribute) = schema.attribute(name) else {
                        continue;
                    };
                    if let Some(value) = rules.apply(schema, attribute, value) {
                        kept.insert(attribute.name.to_owned(), value);
                    }
                }
                // An extension the resource has stays visible, even with
                // nothing in it, unless the projection selects attributes.
                let unprojected =
                    projection.attributes.is_empty() && projection.excluded_attributes.is_empty();
                if !kept.is_empty() || unprojected {
                    projected.insert(schema.id.to_owned(), Value::Object(kept));
                }
            }
            Located::Schema { .. } | Located::Foreign => {}
        }
    }
    Value::Object(projected)
}

/// The attribute paths of one `attributes` or `excludedAttributes` list,
/// resolved.
struct Selection {
    whole_schemas: Vec<&'static str>,
    /// (schema id, attribute name, sub-attribute name), canonical spelling.
    paths: Vec<(&'static str, &'static str, Option<&'static str>)>,
}

/// How much of one attribute a selection names.
enum Coverage {
    Nothing,
    Whole,
    SubAttributes(Vec<&'static str>),
}

impl Selection {
    fn new(kind: ResourceKind, paths: &[AttrPath]) -> Selection {
        let mut selection = Selection {
            whole_schemas: Vec::new(),
            paths: Vec::new(),
        };
        for path in paths {
            match target(kind, &path_text(path)) {
                Some(Target::WholeSchema { schema, .. }) => selection.whole_schemas.push(schema.id),
                Some(Target::Attribute(resolved)) => selection.paths.push((
                    resolved.schema.id,
                    resolved.attribute.name,
                    resolved.sub_attribute.map(|sub| sub.name),
                )),
                None => {}
            }
        }
        selection
    }

    fn coverage(&self, schema: &Schema, attribute: &Attribute) -> Coverage {
        if self.whole_schemas.contains(&schema.id) {
            return Coverage::Whole;
        }
        let mut subs = Vec::new();
        for &(schema_id, name, sub) in &self.paths {
            if schema_id != schema.id || name != attribute.name {
                continue;
            }
            match sub {
                None => return Coverage::Whole,
                Some(sub) => subs.push(sub),
            }
        }
        if subs.is_empty() {
            Coverage::Nothing
        } else {
            Coverage::SubAttributes(subs)
        }
    }
}

struct Rules {
    requested: Selection,
    /// Whether `attributes` was given at all: then only what it names is
    /// returned.
    restrict: bool,
    excluded: Selection,
}

impl Rules {
    /// What of `value`, the value of top-level `attribute` of `schema`, a
    /// response carries.
    fn apply(
        &self,
        schema: &Schema,
        attribute: &'static Attribute,
        value: &Value,
    ) -> Option<Value> {
        match attribute.returned {
            Returned::Never => return None,
            Returned::Always => return Some(value.clone()),
            Returned::Default | Returned::Request => {}
        }
        // `None`: every sub-attribute returned by default.
        let wanted = match self.requested.coverage(schema, attribute) {
            Coverage::Whole => None,
            Coverage::SubAttributes(subs) => Some(subs),
            Coverage::Nothing if self.restrict || attribute.returned == Returned::Request => {
                return None;
            }
            Coverage::Nothing => None,
        };
        let excluded = match self.excluded.coverage(schema, attribute) {
            Coverage::Whole => return None,
            Coverage::SubAttributes(subs) => subs,
            Coverage::Nothing => Vec::new(),
        };
        if attribute.ty != AttrType::Complex {
            return Some(value.clone());
        }
        let keep = |members: &Map<String, Value>| -> Option<Value> {
            let mut kept = Map::new();
            for (name, value) in members {
                let Some(sub) = attribute.sub_attribute(name) else {
                    continue;
                };
                let named = wanted
                    .as_ref()
                    .is_some_and(|wanted| wanted.contains(&sub.name));
                let returned = match sub.returned {
                    Returned::Never => false,
                    Returned::Always => true,
                    Returned::Request => named,
                    Returned::Default => {
                        (wanted.is_none() || named) && !excluded.contains(&sub.name)
                    }
                };
                if returned {
                    kept.insert(sub.name.to_owned(), value.clone());
                }
            }
            (!kept.is_empty()).then_some(Value::Object(kept))
        };
        match value {
            Value::Object(members) => keep(members),
            Value::Array(elements) => {
                let kept: Vec<Value> = elements
                    .iter()
                    .filter_map(|element| match element {
                        Value::Object(members) => keep(members),
                        other => Some(other.clone()),
                    })
                    .collect();
                (!kept.is_empty()).then_some(Value::Array(kept))
            }
            other => Some(other.clone()),
        }
    }
}

/// `base_url` joined with `path`, whether or not the base ends in `/`.
fn location(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// The `/Schemas/{id}` document of one schema (RFC 7643 §7), with `meta`
/// (`resourceType: "Schema"`, absolute `location` under `base_url`, which
/// is the SCIM base such as `https://muster.example.com/scim/v2`).
///
/// Every attribute lists every characteristic of RFC 7643 §7, with
/// `canonicalValues` always present (possibly empty), `referenceTypes` on
/// references and `subAttributes` on complex attributes.
pub fn schema_document(schema: &Schema, base_url: &str) -> Value {
    // SCIM has no field for these limits: the descriptions carry them.
    let max_values = [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find(|kind| kind.all_schemas().iter().any(|s| s.id == schema.id))
        .and_then(ResourceKind::max_values);
    let description = format!(
        "{} A PATCH request takes at most {} operations.{}",
        schema.description,
        super::patch::MAX_OPERATIONS,
        match max_values {
            Some(max) => format!(" A multi-valued attribute holds at most {max} values."),
            None => String::new(),
        }
    );
    let attributes: Vec<Value> = schema
        .attributes
        .iter()
        .map(|attribute| {
            let mut document = attribute_document(attribute);
            if let (Some(max), true) = (max_values, attribute.multi_valued) {
                document["description"] =
                    json!(format!("{} At most {max} values.", attribute.description));
            }
            document
        })
        .collect();
    json!({
        "schemas": [SCHEMA_DOCUMENT_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": location(base_url, &format!("/Schemas/{}", schema.id)),
        },
    })
}

fn attribute_document(attribute: &Attribute) -> Value {
    let mut document = Map::new();
    let mut put = |key: &str, value: Value| {
        document.insert(key.to_owned(), value);
    };
    put("name", json!(attribute.name));
    put("type", json!(attribute.ty.as_str()));
    put("multiValued", json!(attribute.multi_valued));
    put("description", json!(attribute.description));
    put("required", json!(attribute.required));
    put("caseExact", json!(attribute.case_exact));
    put("mutability", json!(attribute.mutability.as_str()));
    put("returned", json!(attribute.returned.as_str()));
    put("uniqueness", json!(attribute.uniqueness.as_str()));
    put("canonicalValues", json!(attribute.canonical_values));
    if attribute.ty == AttrType::Reference {
        put("referenceTypes", json!(attribute.reference_types));
    }
    if attribute.ty == AttrType::Complex {
        let subs: Vec<Value> = attribute
            .sub_attributes
            .iter()
            .map(attribute_document)
            .collect();
        put("subAttributes", Value::Array(subs));
    }
    Value::Object(document)
}

/// The `/ResourceTypes/{id}` document (RFC 7643 §6) of `kind`.
pub fn resource_type_document(kind: ResourceKind, base_url: &str) -> Value {
    let description = match kind {
        ResourceKind::User => "User Account",
        ResourceKind::Group => "Group",
    };
    let extensions: Vec<Value> = kind
        .extension_schemas()
        .iter()
        .map(|schema| json!({ "schema": schema.id, "required": false }))
        .collect();
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": kind.as_str(),
        "name": kind.as_str(),
        "endpoint": kind.endpoint(),
        "description": description,
        "schema": kind.core_schema().id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": location(base_url, &format!("/ResourceTypes/{}", kind.as_str())),
        },
    })
}

/// What `/ServiceProviderConfig` advertises; the server enforces the same
/// numbers.
#[derive(Debug, Clone, Copy)]
pub struct ServiceProviderLimits {
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    pub filter_max_results: usize,
}

/// The `/ServiceProviderConfig` document (RFC 7643 §5): patch, bulk,
/// filter, changePassword, sort and etag supported, bearer authentication.
pub fn service_provider_config(base_url: &str, limits: &ServiceProviderLimits) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": { "supported": true },
        "bulk": {
            "supported": true,
            "maxOperations": limits.bulk_max_operations,
            "maxPayloadSize": limits.bulk_max_payload_bytes,
        },
        "filter": { "supported": true, "maxResults": limits.filter_max_results },
        "changePassword": { "supported": true },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a Muster SCIM token (mst_scim_…) in the Authorization: Bearer header",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": location(base_url, "/ServiceProviderConfig"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a path the way a SCIM parser would: a URN prefix up to the
    /// last colon, then `name.sub`.
    fn path(text: &str) -> AttrPath {
        let (urn, rest) = if text.to_ascii_lowercase().starts_with("urn:") {
            match text.rsplit_once(':') {
                Some((urn, rest)) => (Some(urn.to_owned()), rest),
                None => (None, text),
            }
        } else {
            (None, text)
        };
        let (name, sub_attr) = match rest.split_once('.') {
            Some((name, sub)) => (name.to_owned(), Some(sub.to_owned())),
            None => (rest.to_owned(), None),
        };
        AttrPath {
            urn,
            name,
            sub_attr,
        }
    }

    fn paths(texts: &[&str]) -> Vec<AttrPath> {
        texts.iter().map(|text| path(text)).collect()
    }

    fn resolved(
        kind: ResourceKind,
        text: &str,
    ) -> Option<(&'static str, bool, &'static str, Option<&'static str>)> {
        resolve(kind, &path(text)).map(|r| {
            (
                r.schema.id,
                r.extension,
                r.attribute.name,
                r.sub_attribute.map(|s| s.name),
            )
        })
    }

    fn normalize(
        kind: ResourceKind,
        body: Value,
    ) -> Result<(Value, Option<String>), ResourceError> {
        normalize_resource(kind, &body).map(|(map, password)| (Value::Object(map), password))
    }

    fn invalid_value(kind: ResourceKind, body: Value) -> String {
        match normalize_resource(kind, &body) {
            Err(ResourceError::InvalidValue(message)) => message,
            other => panic!("expected InvalidValue for {body}, got {other:?}"),
        }
    }

    const ENTERPRISE_ATTR: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";

    // ---- resolution ----

    #[test]
    fn resolves_core_attributes_case_insensitively() {
        assert_eq!(
            resolved(ResourceKind::User, "userName"),
            Some((USER_SCHEMA, false, "userName", None))
        );
        assert_eq!(
            resolved(ResourceKind::User, "USERNAME"),
            Some((USER_SCHEMA, false, "userName", None))
        );
        assert_eq!(
            resolved(ResourceKind::User, "name.GIVENNAME"),
            Some((USER_SCHEMA, false, "name", Some("givenName")))
        );
        assert_eq!(
            resolved(ResourceKind::User, "Emails.Value"),
            Some((USER_SCHEMA, false, "emails", Some("value")))
        );
        assert_eq!(
            resolved(ResourceKind::Group, "displayname"),
            Some((GROUP_SCHEMA, false, "displayName", None))
        );
        assert_eq!(
            resolved(ResourceKind::Group, "members.$REF"),
            Some((GROUP_SCHEMA, false, "members", Some("$ref")))
        );
    }

    #[test]
    fn resolves_urn_qualified_core_attributes() {
        let text = "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName";
        assert_eq!(
            resolved(ResourceKind::User, text),
            Some((USER_SCHEMA, false, "name", Some("familyName")))
        );
        let shouted = "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME";
        assert_eq!(
            resolved(ResourceKind::User, shouted),
            Some((USER_SCHEMA, false, "userName", None))
        );
        let group = "urn:ietf:params:scim:schemas:core:2.0:Group:displayName";
        assert_eq!(
            resolved(ResourceKind::Group, group),
            Some((GROUP_SCHEMA, false, "displayName", None))
        );
        // Another resource type's core schema names nothing here.
        assert_eq!(resolved(ResourceKind::User, group), None);
    }

    #[test]
    fn resolves_extension_attributes_only_with_their_urn() {
        let employee = format!("{ENTERPRISE_ATTR}employeeNumber");
        assert_eq!(
            resolved(ResourceKind::User, &employee),
            Some((ENTERPRISE_USER_SCHEMA, true, "employeeNumber", None))
        );
        let manager = "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:user:Manager.Value";
        assert_eq!(
            resolved(ResourceKind::User, manager),
            Some((ENTERPRISE_USER_SCHEMA, true, "manager", Some("value")))
        );
        let role = "urn:muster:params:scim:schemas:extension:muster:2.0:Group:role";
        assert_eq!(
            resolved(ResourceKind::Group, role),
            Some((MUSTER_GROUP_SCHEMA, true, "role", None))
        );
        let rights =
            "urn:muster:params:scim:schemas:extension:muster:2.0:Group:projectRights.rights";
        assert_eq!(
            resolved(ResourceKind::Group, rights),
            Some((MUSTER_GROUP_SCHEMA, true, "projectRights", Some("rights")))
        );
        assert_eq!(resolved(ResourceKind::User, "employeeNumber"), None);
        assert_eq!(resolved(ResourceKind::Group, &employee), None);
        assert_eq!(resolved(ResourceKind::User, role), None);
    }

    #[test]
    fn resolves_common_attributes_for_both_kinds() {
        for (kind, core) in [
            (ResourceKind::User, USER_SCHEMA),
            (ResourceKind::Group, GROUP_SCHEMA),
        ] {
            assert_eq!(resolved(kind, "ID"), Some((core, false, "id", None)));
            assert_eq!(
                resolved(kind, "externalid"),
                Some((core, false, "externalId", None))
            );
            assert_eq!(
                resolved(kind, "meta.lastmodified"),
                Some((core, false, "meta", Some("lastModified")))
            );
            assert_eq!(
                resolved(kind, &format!("{core}:externalId")),
                Some((core, false, "externalId", None))
            );
        }
        let id = resolve(ResourceKind::User, &path("id")).map(|r| r.attribute);
        assert!(id.is_some_and(|id| id.returned == Returned::Always && id.case_exact));
        let extension_id = format!("{ENTERPRISE_ATTR}id");
        assert_eq!(resolved(ResourceKind::User, &extension_id), None);
    }

    #[test]
    fn unknown_names_resolve_to_none() {
        assert_eq!(resolved(ResourceKind::User, "nosuch"), None);
        assert_eq!(resolved(ResourceKind::User, "name.nosuch"), None);
        assert_eq!(resolved(ResourceKind::User, "userName.value"), None);
        assert_eq!(resolved(ResourceKind::User, "members"), None);
        assert_eq!(resolved(ResourceKind::Group, "userName"), None);
        assert_eq!(
            resolved(ResourceKind::User, "urn:example:custom:2.0:User:userName"),
            None
        );
        assert_eq!(resolved(ResourceKind::User, ""), None);
        assert_eq!(
            resolved(ResourceKind::User, &format!("{ENTERPRISE_ATTR}nosuch")),
            None
        );
    }

    #[test]
    fn whole_extension_paths_are_recognised_however_split() {
        let urn = ENTERPRISE_USER_SCHEMA;
        let split_at_colon = path(urn);
        let unsplit = AttrPath {
            urn: None,
            name: urn.to_ascii_uppercase(),
            sub_attr: None,
        };
        let split_at_dot = AttrPath {
            urn: None,
            name: "urn:ietf:params:scim:schemas:extension:enterprise:2".to_owned(),
            sub_attr: Some("0:User".to_owned()),
        };
        for p in [&split_at_colon, &unsplit, &split_at_dot] {
            assert!(resolve(ResourceKind::User, p).is_none());
            assert_eq!(
                whole_extension(ResourceKind::User, p),
                Some(ENTERPRISE_USER_SCHEMA)
            );
            assert_eq!(whole_extension(ResourceKind::Group, p), None);
        }
        assert_eq!(
            whole_extension(ResourceKind::User, &path(USER_SCHEMA)),
            None
        );
        assert_eq!(whole_extension(ResourceKind::User, &path("userName")), None);
        let muster = path(MUSTER_GROUP_SCHEMA);
        assert_eq!(
            whole_extension(ResourceKind::Group, &muster),
            Some(MUSTER_GROUP_SCHEMA)
        );
    }

    #[test]
    fn a_parser_splitting_at_the_dot_in_2_0_still_resolves() {
        let split_at_dot = AttrPath {
            urn: None,
            name: "urn:ietf:params:scim:schemas:extension:enterprise:2".to_owned(),
            sub_attr: Some("0:User:manager.value".to_owned()),
        };
        let r = resolve(ResourceKind::User, &split_at_dot)
            .map(|r| (r.attribute.name, r.sub_attribute.map(|s| s.name)));
        assert_eq!(r, Some(("manager", Some("value"))));
    }

    #[test]
    fn extension_urn_is_case_insensitive_and_per_kind() {
        let lower = ENTERPRISE_USER_SCHEMA.to_ascii_lowercase();
        assert_eq!(
            extension_urn(ResourceKind::User, &lower),
            Some(ENTERPRISE_USER_SCHEMA)
        );
        assert_eq!(
            extension_urn(ResourceKind::Group, ENTERPRISE_USER_SCHEMA),
            None
        );
        assert_eq!(
            extension_urn(ResourceKind::Group, MUSTER_GROUP_SCHEMA),
            Some(MUSTER_GROUP_SCHEMA)
        );
        assert_eq!(extension_urn(ResourceKind::User, USER_SCHEMA), None);
        assert_eq!(
            extension_urn(
                ResourceKind::User,
                &format!("{ENTERPRISE_ATTR}employeeNumber")
            ),
            None
        );
    }

    // ---- normalization: real bodies ----

    #[test]
    fn normalizes_an_okta_create_user_body() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": { "givenName": "Test", "familyName": "User" },
            "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        });
        let (resource, password) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(password.as_deref(), Some("1mz050nq"));
        assert_eq!(
            resource,
            json!({
                "userName": "test.user@okta.local",
                "name": { "givenName": "Test", "familyName": "User" },
                "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "active": true
            })
        );
    }

    #[test]
    fn normalizes_an_entra_create_user_body() {
        let body = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee@contoso.com",
            "active": "True",
            "addresses": [{
                "primary": false, "type": "work", "formatted": null,
                "streetAddress": "1 Main St", "locality": null, "region": null,
                "postalCode": null, "country": "US"
            }],
            "displayName": "Test User",
            "emails": [{ "type": "work", "value": "test.user@contoso.com", "primary": true }],
            "meta": { "resourceType": "User" },
            "name": { "formatted": "Test User", "familyName": "User", "givenName": "Test" },
            "phoneNumbers": [{ "type": "mobile", "value": "+1 555 0100" }],
            "roles": [],
            "title": null,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "costCenter": null,
                "manager": "ee4c2a1e-d1b4-4d1c-a2b6-0f8a2b2f1c11"
            }
        });
        let (resource, password) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(password, None);
        assert_eq!(
            resource,
            json!({
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee@contoso.com",
                "active": true,
                "addresses": [{
                    "primary": false, "type": "work", "streetAddress": "1 Main St", "country": "US"
                }],
                "displayName": "Test User",
                "emails": [{ "type": "work", "value": "test.user@contoso.com", "primary": true }],
                "name": { "formatted": "Test User", "familyName": "User", "givenName": "Test" },
                "phoneNumbers": [{ "type": "mobile", "value": "+1 555 0100" }],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "701984",
                    "department": "Tour Operations",
                    "manager": { "value": "ee4c2a1e-d1b4-4d1c-a2b6-0f8a2b2f1c11" }
                }
            })
        );
    }

    #[test]
    fn accepts_entra_flattened_extension_keys() {
        let body = json!({
            "userName": "flat@contoso.com",
            "active": "false",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:MANAGER": "mgr-1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Ops" }
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({
                "userName": "flat@contoso.com",
                "active": false,
                ENTERPRISE_USER_SCHEMA: {
                    "employeeNumber": "701984",
                    "department": "Ops",
                    "manager": { "value": "mgr-1" }
                }
            })
        );
    }

    #[test]
    fn normalizes_an_entra_create_group_body() {
        let body = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "members": [{ "$ref": null, "value": "9b5b0a2c" }, { "value": "0c0d35e8", "display": "Bob" }],
            "meta": { "resourceType": "Group" },
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group:customAttr": "x"
        });
        let (resource, password) = normalize(ResourceKind::Group, body).unwrap();
        assert_eq!(password, None);
        assert_eq!(
            resource,
            json!({
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Group1DisplayName",
                "members": [{ "value": "9b5b0a2c" }, { "value": "0c0d35e8" }]
            })
        );
    }

    #[test]
    fn normalizes_an_okta_create_group_body() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Test SCIMv2",
            "members": []
        });
        let (resource, _) = normalize(ResourceKind::Group, body).unwrap();
        assert_eq!(resource, json!({ "displayName": "Test SCIMv2" }));
    }

    // ---- normalization: rules ----

    #[test]
    fn writes_canonical_names() {
        let body = json!({
            "USERNAME": "bjensen",
            "Name": { "GIVENNAME": "Barbara" },
            "Emails": [{ "VALUE": "bjensen@example.com", "Type": "work", "PRIMARY": true }],
            "EXTERNALID": "x1",
            "x509certificates": [{ "value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw" }]
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({
                "userName": "bjensen",
                "name": { "givenName": "Barbara" },
                "emails": [{ "value": "bjensen@example.com", "type": "work", "primary": true }],
                "externalId": "x1",
                "x509Certificates": [{ "value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw" }]
            })
        );
    }

    #[test]
    fn drops_read_only_attributes_without_reading_them() {
        let body = json!({
            "id": 17,
            "meta": "whatever",
            "userName": "bjensen",
            "groups": [{ "value": "g1", "display": 5 }],
            ENTERPRISE_USER_SCHEMA: { "manager": { "value": "m1", "displayName": ["ignored"] } }
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({ "userName": "bjensen", ENTERPRISE_USER_SCHEMA: { "manager": { "value": "m1" } } })
        );

        let group = json!({
            "displayName": "Admins",
            "members": [{ "value": "u1", "display": "Ann", "type": "user" }],
            MUSTER_GROUP_SCHEMA: { "role": "owner", "projectRights": "nonsense" }
        });
        let (resource, _) = normalize(ResourceKind::Group, group).unwrap();
        assert_eq!(
            resource,
            json!({ "displayName": "Admins", "members": [{ "value": "u1", "type": "User" }] })
        );
    }

    #[test]
    fn ignores_schemas_and_unknown_schema_keys() {
        let body = json!({
            "schemas": "not even an array",
            "userName": "bjensen",
            "urn:ietf:params:scim:schemas:extension:custom:2.0:User": { "badge": 7 },
            "urn:ietf:params:scim:schemas:extension:custom:2.0:User:badge": 7,
            "URN:example": true,
            "https://schemas.example.com/ext": {}
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(resource, json!({ "userName": "bjensen" }));
    }

    #[test]
    fn extension_with_only_nulls_or_read_only_values_is_left_out() {
        let body = json!({
            "userName": "bjensen",
            ENTERPRISE_USER_SCHEMA: { "department": null, "manager": { "displayName": "Boss" } }
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(resource, json!({ "userName": "bjensen" }));
    }

    #[test]
    fn nulls_mean_unset_at_every_level() {
        let body = json!({
            "userName": "bjensen",
            "displayName": null,
            "name": { "givenName": null },
            "emails": [null, { "value": "b@example.com", "type": null }],
            "phoneNumbers": [null],
            ENTERPRISE_USER_SCHEMA: null
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({ "userName": "bjensen", "emails": [{ "value": "b@example.com" }] })
        );
    }

    #[test]
    fn wraps_single_values_of_multi_valued_attributes() {
        let body = json!({
            "userName": "bjensen",
            "emails": { "value": "b@example.com", "primary": "True" },
            "phoneNumbers": "+1 555 0100",
            "ims": ["bjensen@jabber.example"],
            "roles": [{ "value": "admin", "primary": "true" }]
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({
                "userName": "bjensen",
                "emails": [{ "value": "b@example.com", "primary": true }],
                "phoneNumbers": [{ "value": "+1 555 0100" }],
                "ims": [{ "value": "bjensen@jabber.example" }],
                "roles": [{ "value": "admin", "primary": true }]
            })
        );
    }

    #[test]
    fn accepts_dotted_top_level_keys_and_merges_them() {
        let body = json!({
            "userName": "bjensen",
            "name": { "familyName": "Jensen" },
            "name.givenName": "Barbara"
        });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource,
            json!({ "userName": "bjensen", "name": { "familyName": "Jensen", "givenName": "Barbara" } })
        );
    }

    #[test]
    fn a_user_attribute_holds_at_most_the_limit_of_values() {
        let values = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({ "value": format!("v{i}") }))
                .collect()
        };
        let at_limit = json!({ "userName": "b", "roles": values(MAX_USER_VALUES) });
        assert!(normalize_resource(ResourceKind::User, &at_limit).is_ok());
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", "roles": values(MAX_USER_VALUES + 1) }),
        );
        assert!(
            message.contains("`roles` may hold at most 100 values"),
            "{message}"
        );
        let group = json!({ "displayName": "G", "members": values(MAX_USER_VALUES + 1) });
        assert!(normalize_resource(ResourceKind::Group, &group).is_ok());
    }

    #[test]
    fn at_most_one_primary_value() {
        let two = json!({
            "userName": "bjensen",
            "emails": [{ "value": "a@example.com", "primary": true }, { "value": "b@example.com", "primary": "True" }]
        });
        let message = invalid_value(ResourceKind::User, two);
        assert!(
            message.contains("emails") && message.contains("primary"),
            "{message}"
        );
        let one = json!({
            "userName": "bjensen",
            "emails": [{ "value": "a@example.com", "primary": true }, { "value": "b@example.com", "primary": false }]
        });
        assert!(normalize(ResourceKind::User, one).is_ok());
    }

    #[test]
    fn required_attributes_must_be_present_and_non_empty() {
        for body in [
            json!({ "displayName": "No user name" }),
            json!({ "userName": "" }),
            json!({ "userName": "   " }),
            json!({ "userName": null }),
        ] {
            let message = invalid_value(ResourceKind::User, body);
            assert!(message.contains("`userName` is required"), "{message}");
        }
        for body in [json!({ "members": [] }), json!({ "displayName": "" })] {
            let message = invalid_value(ResourceKind::Group, body);
            assert!(message.contains("`displayName` is required"), "{message}");
        }
    }

    #[test]
    fn rejects_a_body_that_is_not_an_object() {
        for body in [json!([]), json!("user"), json!(null), json!(3)] {
            assert!(matches!(
                normalize_resource(ResourceKind::User, &body),
                Err(ResourceError::InvalidSyntax(_))
            ));
        }
    }

    #[test]
    fn rejects_unknown_attributes_and_sub_attributes() {
        let message = invalid_value(ResourceKind::User, json!({ "userName": "b", "foo": 1 }));
        assert!(message.contains("unknown attribute `foo`"), "{message}");
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", "name": { "nick": "B" } }),
        );
        assert!(
            message.contains("unknown sub-attribute `nick`") && message.contains("`name`"),
            "{message}"
        );
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", "emails": [{ "value": "a@b.c", "label": "x" }] }),
        );
        assert!(message.contains("`emails[0]`"), "{message}");
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", ENTERPRISE_USER_SCHEMA: { "badge": "7" } }),
        );
        assert!(message.contains("badge"), "{message}");
        let flattened = format!("{ENTERPRISE_ATTR}badge");
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", flattened: "7" }),
        );
        assert!(message.contains("badge"), "{message}");
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", "name.nick": "B" }),
        );
        assert!(message.contains("name.nick"), "{message}");
        let message = invalid_value(
            ResourceKind::Group,
            json!({ "displayName": "g", "userName": "b" }),
        );
        assert!(
            message.contains("unknown attribute `userName` for a Group resource"),
            "{message}"
        );
    }

    #[test]
    fn rejects_values_of_the_wrong_type_naming_path_and_type() {
        let cases = [
            (json!({ "userName": 42 }), "`userName` must be a string"),
            (
                json!({ "userName": "b", "active": "yes" }),
                "`active` must be a boolean",
            ),
            (
                json!({ "userName": "b", "active": 1 }),
                "`active` must be a boolean",
            ),
            (
                json!({ "userName": "b", "name": "Barbara Jensen" }),
                "`name` must be an object",
            ),
            (
                json!({ "userName": "b", "name": { "givenName": true } }),
                "`name.givenName` must be a string",
            ),
            (
                json!({ "userName": "b", "emails": [42] }),
                "`emails[0].value` must be a string",
            ),
            (
                json!({ "userName": "b", "emails": [[{ "value": "a@b.c" }]] }),
                "`emails[0]` must be an object",
            ),
            (
                json!({ "userName": "b", "emails": [{ "value": "a@b.c", "primary": "yes" }] }),
                "`emails[0].primary` must be a boolean",
            ),
            (
                json!({ "userName": "b", "displayName": ["B"] }),
                "`displayName` is single-valued",
            ),
            (
                json!({ "userName": "b", "profileUrl": {} }),
                "`profileUrl` must be a URI string",
            ),
            (
                json!({ "userName": "b", "x509Certificates": [{ "value": "not base64!" }] }),
                "`x509Certificates[0].value` must be a base64-encoded string",
            ),
            (
                json!({ "userName": "b", "password": 1234 }),
                "`password` must be a string",
            ),
            (
                json!({ "userName": "b", ENTERPRISE_USER_SCHEMA: "701984" }),
                "must be an object",
            ),
            (
                json!({ "userName": "b", ENTERPRISE_USER_SCHEMA: { "employeeNumber": 701984 } }),
                "`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber` must be a string",
            ),
            (
                json!({ "userName": "b", ENTERPRISE_USER_SCHEMA: { "manager": ["m1"] } }),
                ":manager` is single-valued",
            ),
        ];
        for (body, expected) in cases {
            let message = invalid_value(ResourceKind::User, body);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        let message = invalid_value(
            ResourceKind::Group,
            json!({ "displayName": "g", "members": [{ "value": 7 }] }),
        );
        assert!(
            message.contains("`members[0].value` must be a string"),
            "{message}"
        );
        let message = invalid_value(
            ResourceKind::Group,
            json!({ "displayName": "g", "members": [{ "value": "u1", "type": "Robot" }] }),
        );
        assert!(
            message.contains("`members[0].type` must be one of User, Group"),
            "{message}"
        );
    }

    static COUNT: Attribute = Attribute::new("count", AttrType::Integer, "A test integer.");
    static RATIO: Attribute = Attribute::new("ratio", AttrType::Decimal, "A test decimal.");
    static WHEN: Attribute = Attribute::new("when", AttrType::DateTime, "A test dateTime.");

    #[test]
    fn checks_integers_decimals_and_date_times() {
        assert_eq!(
            normalize_value(&COUNT, "count", &json!(3)),
            Ok(Some(json!(3)))
        );
        assert_eq!(
            normalize_value(&COUNT, "count", &json!(-3)),
            Ok(Some(json!(-3)))
        );
        assert!(normalize_value(&COUNT, "count", &json!(3.5)).is_err());
        assert!(normalize_value(&COUNT, "count", &json!("3")).is_err());
        assert_eq!(
            normalize_value(&RATIO, "ratio", &json!(0.25)),
            Ok(Some(json!(0.25)))
        );
        assert_eq!(
            normalize_value(&RATIO, "ratio", &json!(2)),
            Ok(Some(json!(2)))
        );
        assert!(normalize_value(&RATIO, "ratio", &json!("0.25")).is_err());
        let kept = "2011-08-01T18:29:49.793+02:00";
        assert_eq!(
            normalize_value(&WHEN, "when", &json!(kept)),
            Ok(Some(json!(kept)))
        );
        assert!(normalize_value(&WHEN, "when", &json!("2011-08-01T18:29:49Z")).is_ok());
        for bad in [json!("2011-08-01"), json!("yesterday"), json!(1312223389)] {
            let Err(ResourceError::InvalidValue(message)) = normalize_value(&WHEN, "when", &bad)
            else {
                panic!("{bad} accepted");
            };
            assert!(
                message.contains("`when` must be an RFC 3339 date-time"),
                "{message}"
            );
        }
    }

    #[test]
    fn caps_string_length() {
        let longest = "a".repeat(MAX_STRING_CHARS);
        assert!(normalize(ResourceKind::User, json!({ "userName": longest })).is_ok());
        // Characters, not bytes, count.
        let wide = "é".repeat(MAX_STRING_CHARS);
        assert!(normalize(ResourceKind::User, json!({ "userName": wide })).is_ok());
        let too_long = "a".repeat(MAX_STRING_CHARS + 1);
        let message = invalid_value(ResourceKind::User, json!({ "userName": too_long.clone() }));
        assert!(
            message.contains("`userName` is longer than 2048 characters"),
            "{message}"
        );
        let message = invalid_value(
            ResourceKind::Group,
            json!({ "displayName": "g", "members": [{ "value": too_long.clone() }] }),
        );
        assert!(
            message.contains("`members[0].value` is longer"),
            "{message}"
        );
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "b", "password": too_long }),
        );
        assert!(message.contains("`password` is longer"), "{message}");
        // Certificates get more room.
        let certificate = "A".repeat(MAX_BINARY_CHARS);
        let body = json!({ "userName": "b", "x509Certificates": [{ "value": certificate }] });
        assert!(normalize(ResourceKind::User, body).is_ok());
        let certificate = "A".repeat(MAX_BINARY_CHARS + 1);
        let body = json!({ "userName": "b", "x509Certificates": [{ "value": certificate }] });
        let message = invalid_value(ResourceKind::User, body);
        assert!(message.contains("is longer than 16384"), "{message}");
    }

    #[test]
    fn rejects_an_attribute_given_twice() {
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "a", "USERNAME": "b" }),
        );
        assert!(message.contains("given more than once"), "{message}");
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "a", "name": { "givenName": "A", "GivenName": "B" } }),
        );
        assert!(
            message.contains("`name.givenName` is given more than once"),
            "{message}"
        );
        let message = invalid_value(
            ResourceKind::User,
            json!({ "userName": "a", "name": { "givenName": "A" }, "name.givenName": "B" }),
        );
        assert!(message.contains("given more than once"), "{message}");
        // A null does not count as a mention, nor does a read-only attribute.
        let null = json!({ "userName": "a", "UserName": null });
        assert!(normalize(ResourceKind::User, null).is_ok());
        let echoed =
            json!({ "userName": "a", "id": "1", "ID": "1", "meta": {}, "Meta.version": "2" });
        assert_eq!(
            normalize(ResourceKind::User, echoed),
            Ok((json!({ "userName": "a" }), None))
        );
    }

    #[test]
    fn error_messages_quote_client_input_briefly() {
        let key = "k".repeat(5000);
        let message = invalid_value(ResourceKind::User, json!({ "userName": "a", key: 1 }));
        assert!(message.len() < 200, "{} bytes", message.len());
    }

    #[test]
    fn member_types_take_their_canonical_spelling() {
        let body = json!({ "displayName": "g", "members": [{ "value": "u1", "type": "USER" }, { "value": "g2", "type": "group" }] });
        let (resource, _) = normalize(ResourceKind::Group, body).unwrap();
        assert_eq!(
            resource["members"],
            json!([{ "value": "u1", "type": "User" }, { "value": "g2", "type": "Group" }])
        );
        // Other canonical values are advisory.
        let body = json!({ "userName": "b", "emails": [{ "value": "a@b.c", "type": "Internal" }] });
        let (resource, _) = normalize(ResourceKind::User, body).unwrap();
        assert_eq!(
            resource["emails"],
            json!([{ "value": "a@b.c", "type": "Internal" }])
        );
    }

    // ---- projection ----

    fn stored_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223",
            "externalId": "bjensen-ext",
            "userName": "bjensen",
            "name": { "givenName": "Barbara", "familyName": "Jensen" },
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "type": "home" }
            ],
            "active": true,
            "password": "should never leave",
            "groups": [{ "value": "g1", "display": "Admins" }],
            "internalNote": "not a SCIM attribute",
            ENTERPRISE_USER_SCHEMA: { "employeeNumber": "701984", "department": "Ops" },
            "meta": { "resourceType": "User", "version": "W/\"1\"", "location": "https://h/scim/v2/Users/2819c223" }
        })
    }

    fn projected(
        kind: ResourceKind,
        resource: &Value,
        attributes: &[&str],
        excluded: &[&str],
    ) -> Value {
        let projection = Projection {
            attributes: paths(attributes),
            excluded_attributes: paths(excluded),
        };
        project(kind, resource, &projection)
    }

    #[test]
    fn default_projection_returns_everything_returnable() {
        let out = projected(ResourceKind::User, &stored_user(), &[], &[]);
        let mut expected = stored_user();
        if let Some(object) = expected.as_object_mut() {
            object.remove("password");
            object.remove("internalNote");
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn attributes_select_with_sub_attribute_granularity() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &[
                "userName",
                "name.givenName",
                "emails.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            ],
            &[],
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                "userName": "bjensen",
                "name": { "givenName": "Barbara" },
                "emails": [{ "value": "bjensen@example.com" }],
                ENTERPRISE_USER_SCHEMA: { "employeeNumber": "701984" }
            })
        );
    }

    #[test]
    fn attribute_names_match_case_insensitively() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &["USERNAME", "Name.GivenName", "META.VERSION"],
            &[],
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                "userName": "bjensen",
                "name": { "givenName": "Barbara" },
                "meta": { "version": "W/\"1\"" }
            })
        );
    }

    #[test]
    fn always_and_never_override_the_lists() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &["password", "externalId"],
            &["id"],
        );
        assert_eq!(
            out,
            json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "2819c223", "externalId": "bjensen-ext" })
        );
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &[],
            &["id", "schemas", "userName"],
        );
        assert_eq!(out["id"], json!("2819c223"));
        assert!(out.get("schemas").is_some());
        assert!(out.get("userName").is_none());
    }

    #[test]
    fn naming_an_extension_selects_or_excludes_all_of_it() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &[ENTERPRISE_USER_SCHEMA],
            &[],
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                ENTERPRISE_USER_SCHEMA: { "employeeNumber": "701984", "department": "Ops" }
            })
        );
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &[],
            &[&ENTERPRISE_USER_SCHEMA.to_ascii_lowercase()],
        );
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["userName"], json!("bjensen"));
    }

    #[test]
    fn an_extension_left_empty_is_left_out() {
        let out = projected(ResourceKind::User, &stored_user(), &["userName"], &[]);
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        let excluded = [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ];
        let out = projected(ResourceKind::User, &stored_user(), &[], &excluded);
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn excluded_attributes_remove_attributes_and_sub_attributes() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &[],
            &["name.familyName", "emails.type", "meta", "groups"],
        );
        assert_eq!(out["name"], json!({ "givenName": "Barbara" }));
        // The element that had only a type is gone with it.
        assert_eq!(
            out["emails"],
            json!([{ "value": "bjensen@example.com", "primary": true }])
        );
        assert!(out.get("meta").is_none());
        assert!(out.get("groups").is_none());
        assert_eq!(out["userName"], json!("bjensen"));
    }

    #[test]
    fn entra_reads_groups_without_members() {
        let group = json!({
            "schemas": [GROUP_SCHEMA, MUSTER_GROUP_SCHEMA],
            "id": "g1",
            "displayName": "Admins",
            "members": [{ "value": "u1", "display": "Ann", "type": "User", "$ref": "https://h/scim/v2/Users/u1" }],
            MUSTER_GROUP_SCHEMA: { "role": "admin", "projectRights": [{ "projectId": "p1", "rights": ["read"] }] },
            "meta": { "resourceType": "Group" }
        });
        let out = projected(ResourceKind::Group, &group, &[], &["members"]);
        assert_eq!(
            out,
            json!({
                "schemas": [GROUP_SCHEMA, MUSTER_GROUP_SCHEMA],
                "id": "g1",
                "displayName": "Admins",
                MUSTER_GROUP_SCHEMA: { "role": "admin", "projectRights": [{ "projectId": "p1", "rights": ["read"] }] },
                "meta": { "resourceType": "Group" }
            })
        );
        let out = projected(
            ResourceKind::Group,
            &group,
            &[
                "members.value",
                "urn:muster:params:scim:schemas:extension:muster:2.0:Group:projectRights.rights",
            ],
            &[],
        );
        assert_eq!(
            out,
            json!({
                "schemas": [GROUP_SCHEMA, MUSTER_GROUP_SCHEMA],
                "id": "g1",
                "members": [{ "value": "u1" }],
                MUSTER_GROUP_SCHEMA: { "projectRights": [{ "rights": ["read"] }] }
            })
        );
    }

    #[test]
    fn attributes_and_excluded_attributes_combine() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &["name", "emails"],
            &["name.familyName", "emails.primary"],
        );
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                "name": { "givenName": "Barbara" },
                "emails": [{ "value": "bjensen@example.com", "type": "work" }, { "type": "home" }]
            })
        );
    }

    #[test]
    fn unknown_paths_are_ignored() {
        let out = projected(
            ResourceKind::User,
            &stored_user(),
            &["nosuch", "urn:example:x:2.0:User:y"],
            &[],
        );
        assert_eq!(
            out,
            json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "2819c223" })
        );
        let out = projected(ResourceKind::User, &stored_user(), &[], &["nosuch"]);
        assert_eq!(out["userName"], json!("bjensen"));
    }

    static NICKNAME: Attribute =
        string("secret", "Returned only on request.").returned(Returned::Request);
    static PLAIN: Attribute = string("plain", "Returned by default.");

    #[test]
    fn request_attributes_need_naming() {
        let schema = Schema {
            id: "urn:test",
            name: "Test",
            description: "",
            attributes: &[],
        };
        let value = json!("x");
        let rules = |attributes: &[&str]| Rules {
            requested: Selection {
                whole_schemas: Vec::new(),
                paths: attributes
                    .iter()
                    .map(|name| {
                        (
                            schema.id,
                            match *name {
                                "secret" => "secret",
                                _ => "plain",
                            },
                            None,
                        )
                    })
                    .collect(),
            },
            restrict: !attributes.is_empty(),
            excluded: Selection {
                whole_schemas: Vec::new(),
                paths: Vec::new(),
            },
        };
        assert_eq!(rules(&[]).apply(&schema, &NICKNAME, &value), None);
        assert_eq!(
            rules(&[]).apply(&schema, &PLAIN, &value),
            Some(value.clone())
        );
        assert_eq!(
            rules(&["secret"]).apply(&schema, &NICKNAME, &value),
            Some(value.clone())
        );
        assert_eq!(rules(&["plain"]).apply(&schema, &NICKNAME, &value), None);
    }

    #[test]
    fn a_non_object_resource_is_returned_as_is() {
        assert_eq!(
            project(ResourceKind::User, &json!("x"), &Projection::default()),
            json!("x")
        );
    }

    // ---- schema data and discovery ----

    const CHARACTERISTICS: [&str; 10] = [
        "name",
        "type",
        "multiValued",
        "description",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "canonicalValues",
    ];

    fn check_attribute_document(document: &Value, path: &str) {
        for key in CHARACTERISTICS {
            assert!(document.get(key).is_some(), "{path} lacks {key}");
        }
        let ty = document["type"].as_str().unwrap_or_default();
        assert!(
            [
                "string",
                "boolean",
                "decimal",
                "integer",
                "dateTime",
                "binary",
                "reference",
                "complex"
            ]
            .contains(&ty),
            "{path}: type {ty}"
        );
        let mutability = document["mutability"].as_str().unwrap_or_default();
        assert!(
            ["readOnly", "readWrite", "immutable", "writeOnly"].contains(&mutability),
            "{path}"
        );
        let returned = document["returned"].as_str().unwrap_or_default();
        assert!(
            ["always", "never", "default", "request"].contains(&returned),
            "{path}"
        );
        let uniqueness = document["uniqueness"].as_str().unwrap_or_default();
        assert!(["none", "server", "global"].contains(&uniqueness), "{path}");
        for key in ["multiValued", "required", "caseExact"] {
            assert!(document[key].is_boolean(), "{path}.{key}");
        }
        assert!(
            document["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{path}"
        );
        assert!(document["canonicalValues"].is_array(), "{path}");
        assert_eq!(
            document.get("referenceTypes").is_some(),
            ty == "reference",
            "{path}"
        );
        if ty == "reference" {
            assert!(
                document["referenceTypes"]
                    .as_array()
                    .is_some_and(|types| !types.is_empty()),
                "{path}"
            );
        }
        assert_eq!(
            document.get("subAttributes").is_some(),
            ty == "complex",
            "{path}"
        );
        if let Some(subs) = document.get("subAttributes").and_then(Value::as_array) {
            assert!(!subs.is_empty(), "{path}");
            for sub in subs {
                let name = sub["name"].as_str().unwrap_or_default();
                assert_ne!(
                    sub["type"],
                    json!("complex"),
                    "{path}.{name}: RFC 7643 §2.3.8"
                );
                check_attribute_document(sub, &format!("{path}.{name}"));
            }
        }
    }

    #[test]
    fn schema_documents_carry_every_characteristic() {
        for schema in schemas() {
            let document = schema_document(schema, "https://muster.example.com/scim/v2/");
            assert_eq!(document["schemas"], json!([SCHEMA_DOCUMENT_SCHEMA]));
            assert_eq!(document["id"], json!(schema.id));
            assert!(document["name"].is_string() && document["description"].is_string());
            assert_eq!(
                document["meta"],
                json!({
                    "resourceType": "Schema",
                    "location": format!("https://muster.example.com/scim/v2/Schemas/{}", schema.id)
                })
            );
            let attributes = document["attributes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(attributes.len(), schema.attributes.len());
            for attribute in &attributes {
                let name = attribute["name"].as_str().unwrap_or_default();
                check_attribute_document(attribute, name);
            }
        }
        for attribute in common_attributes() {
            check_attribute_document(&attribute_document(attribute), attribute.name);
        }
    }

    fn attribute_doc(schema_id: &str, name: &str) -> Value {
        let schema =
            schema_by_id(schema_id).map(|schema| schema_document(schema, "https://h/scim/v2"));
        let attributes = schema
            .and_then(|schema| schema["attributes"].as_array().cloned())
            .unwrap_or_default();
        attributes
            .into_iter()
            .find(|attribute| attribute["name"] == json!(name))
            .unwrap_or(Value::Null)
    }

    #[test]
    fn user_schema_document_follows_rfc_7643_8_7_1() {
        let user_name = attribute_doc(USER_SCHEMA, "userName");
        assert_eq!(user_name["required"], json!(true));
        assert_eq!(user_name["caseExact"], json!(false));
        assert_eq!(user_name["uniqueness"], json!("server"));
        let password = attribute_doc(USER_SCHEMA, "password");
        assert_eq!(
            (password["mutability"].clone(), password["returned"].clone()),
            (json!("writeOnly"), json!("never"))
        );
        assert_eq!(
            attribute_doc(USER_SCHEMA, "profileUrl")["referenceTypes"],
            json!(["external"])
        );
        assert_eq!(
            attribute_doc(USER_SCHEMA, "active")["type"],
            json!("boolean")
        );
        let groups = attribute_doc(USER_SCHEMA, "groups");
        assert_eq!(groups["mutability"], json!("readOnly"));
        let group_subs: Vec<Value> = groups["subAttributes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            group_subs
                .iter()
                .all(|sub| sub["mutability"] == json!("readOnly"))
        );
        let certificates = attribute_doc(USER_SCHEMA, "x509Certificates");
        assert_eq!(certificates["subAttributes"][0]["type"], json!("binary"));
        let photos = attribute_doc(USER_SCHEMA, "photos");
        assert_eq!(photos["subAttributes"][0]["type"], json!("reference"));
        let emails = attribute_doc(USER_SCHEMA, "emails");
        assert_eq!(emails["multiValued"], json!(true));
        assert_eq!(
            emails["subAttributes"][2]["canonicalValues"],
            json!(["work", "home", "other"])
        );
        let addresses = attribute_doc(USER_SCHEMA, "addresses");
        let address_subs: Vec<&str> = addresses["subAttributes"]
            .as_array()
            .map(|subs| subs.iter().filter_map(|sub| sub["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            address_subs,
            [
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
                "primary"
            ]
        );
        // Common attributes are left out of the document (RFC 7643 §3.1).
        for common in ["id", "externalId", "meta"] {
            assert_eq!(attribute_doc(USER_SCHEMA, common), Value::Null);
        }
        let names: Vec<&str> = USER_ATTRIBUTES
            .iter()
            .map(|attribute| attribute.name)
            .collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates"
            ]
        );
    }

    #[test]
    fn extension_and_group_documents_follow_the_brief() {
        let manager = attribute_doc(ENTERPRISE_USER_SCHEMA, "manager");
        assert_eq!(
            manager["subAttributes"][1]["referenceTypes"],
            json!(["User"])
        );
        assert_eq!(manager["subAttributes"][2]["name"], json!("displayName"));
        assert_eq!(manager["subAttributes"][2]["mutability"], json!("readOnly"));
        let display_name = attribute_doc(GROUP_SCHEMA, "displayName");
        assert_eq!(display_name["required"], json!(true));
        let members = attribute_doc(GROUP_SCHEMA, "members");
        assert_eq!(
            members["subAttributes"][0]["mutability"],
            json!("immutable")
        );
        assert_eq!(
            members["subAttributes"][1]["referenceTypes"],
            json!(["User", "Group"])
        );
        assert_eq!(
            members["subAttributes"][2]["canonicalValues"],
            json!(["User", "Group"])
        );
        assert_eq!(members["subAttributes"][3]["mutability"], json!("readOnly"));
        let role = attribute_doc(MUSTER_GROUP_SCHEMA, "role");
        assert_eq!(
            role["canonicalValues"],
            json!(["owner", "admin", "contributor", "viewer"])
        );
        assert_eq!(role["mutability"], json!("readOnly"));
        let rights = attribute_doc(MUSTER_GROUP_SCHEMA, "projectRights");
        assert_eq!(rights["multiValued"], json!(true));
        assert_eq!(rights["subAttributes"][1]["multiValued"], json!(true));
    }

    #[test]
    fn schema_data_is_consistent() {
        let ids: Vec<&str> = schemas().iter().map(|schema| schema.id).collect();
        assert_eq!(
            ids,
            [
                USER_SCHEMA,
                ENTERPRISE_USER_SCHEMA,
                GROUP_SCHEMA,
                MUSTER_GROUP_SCHEMA
            ]
        );
        assert_eq!(
            schema_by_id(&MUSTER_GROUP_SCHEMA.to_ascii_uppercase()).map(|s| s.id),
            Some(MUSTER_GROUP_SCHEMA)
        );
        assert!(schema_by_id("urn:nosuch").is_none());
        fn unique_names(attributes: &[Attribute], context: &str) {
            for (index, attribute) in attributes.iter().enumerate() {
                let clash = attributes[..index]
                    .iter()
                    .any(|other| other.name.eq_ignore_ascii_case(attribute.name));
                assert!(!clash, "{context}: {} twice", attribute.name);
                assert_eq!(
                    attribute.sub_attributes.is_empty(),
                    attribute.ty != AttrType::Complex,
                    "{context}.{}",
                    attribute.name
                );
                unique_names(
                    attribute.sub_attributes,
                    &format!("{context}.{}", attribute.name),
                );
            }
        }
        for schema in schemas() {
            unique_names(schema.attributes, schema.id);
            for common in common_attributes() {
                assert!(
                    schema.attribute(common.name).is_none(),
                    "{} redefines {}",
                    schema.id,
                    common.name
                );
            }
        }
        assert_eq!(ResourceKind::User.core_schema().id, USER_SCHEMA);
        assert_eq!(ResourceKind::Group.extension_schemas().len(), 1);
    }

    #[test]
    fn resource_type_documents() {
        assert_eq!(
            resource_type_document(ResourceKind::User, "https://h/scim/v2"),
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER_SCHEMA,
                "schemaExtensions": [{ "schema": ENTERPRISE_USER_SCHEMA, "required": false }],
                "meta": { "resourceType": "ResourceType", "location": "https://h/scim/v2/ResourceTypes/User" }
            })
        );
        assert_eq!(
            resource_type_document(ResourceKind::Group, "https://h/scim/v2/"),
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Group",
                "schema": GROUP_SCHEMA,
                "schemaExtensions": [{ "schema": MUSTER_GROUP_SCHEMA, "required": false }],
                "meta": { "resourceType": "ResourceType", "location": "https://h/scim/v2/ResourceTypes/Group" }
            })
        );
    }

    #[test]
    fn service_provider_config_document() {
        let limits = ServiceProviderLimits {
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1_048_576,
            filter_max_results: 200,
        };
        let document = service_provider_config("https://h/scim/v2", &limits);
        assert_eq!(document["schemas"], json!([SERVICE_PROVIDER_CONFIG_SCHEMA]));
        assert_eq!(document["patch"], json!({ "supported": true }));
        assert_eq!(
            document["bulk"],
            json!({ "supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576 })
        );
        assert_eq!(
            document["filter"],
            json!({ "supported": true, "maxResults": 200 })
        );
        for feature in ["changePassword", "sort", "etag"] {
            assert_eq!(document[feature], json!({ "supported": true }), "{feature}");
        }
        let scheme = &document["authenticationSchemes"][0];
        assert_eq!(scheme["type"], json!("oauthbearertoken"));
        assert_eq!(scheme["name"], json!("OAuth Bearer Token"));
        assert_eq!(scheme["primary"], json!(true));
        assert!(
            scheme["description"]
                .as_str()
                .is_some_and(|d| d.contains("mst_scim_"))
        );
        assert_eq!(
            document["meta"],
            json!({ "resourceType": "ServiceProviderConfig", "location": "https://h/scim/v2/ServiceProviderConfig" })
        );
    }
}
