//! SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2): lexer,
//! parser, AST and in-memory evaluation over JSON resources.
//!
//! The pipeline is: a `Lexer` turning the input into tokens that carry
//! byte offsets (so every error can say where it happened), a
//! recursive-descent `Parser` with one function per precedence level
//! (`or` < `and` < `not`/parentheses/comparisons), and an evaluator that
//! walks the AST against a `serde_json::Value`, asking the schema for each
//! attribute's type and `caseExact`.
//!
//! Nesting depth: the depth of a filter is the height of its syntax tree
//! where every `and`, `or`, `not (…)`, parenthesised group `(…)` and value
//! filter `[…]` adds one level to everything inside it (`a pr` is depth 0,
//! `a pr and b pr` is 1, `not (a pr and b pr)` is 2, `a or b or c` is 2).
//! Filters deeper than [`MAX_FILTER_DEPTH`] are rejected while parsing, as
//! soon as the limit is crossed, so the parser's recursion (three stack
//! frames per open group) and every later recursive walk over the AST
//! (evaluation, `Display`, drop, translation to a database query) stay
//! within a small fixed bound whatever the input. A consequence is that a
//! flat chain of `or`s is limited to `MAX_FILTER_DEPTH + 1` terms.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::schema::{AttrType, Attribute, GROUP_SCHEMA, ResourceKind, USER_SCHEMA, resolve};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of parentheses, `not`, value paths and logical operators.
pub const MAX_FILTER_DEPTH: usize = 32;

/// An attribute reference as written: `name`, `name.sub`, or URN-qualified
/// `urn:...:User:name.sub`. Names keep the client's spelling; every
/// comparison of names is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN when the path was qualified, e.g.
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub urn: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value: a JSON string, number, boolean or null.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `path op value`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `path pr`
    Present(AttrPath),
    /// `emails[type eq "work" and value co "@corp"]`: `filter`'s paths are
    /// relative to the elements of `path`'s (multi-valued, complex) values.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH `path` (RFC 7644 §3.5.2): `attrPath`, or `valuePath` optionally
/// followed by `.subAttr` (e.g. `emails[type eq "work"].value`).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub value_filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[...].value`.
    pub sub_attr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The filter does not parse, or is too long or too deep. The message
    /// says where and why; it becomes SCIM `invalidFilter`.
    #[error("{0}")]
    Invalid(String),
    /// A PATCH path does not parse; becomes SCIM `invalidPath`.
    #[error("{0}")]
    InvalidPath(String),
}

pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_BYTES {
        return Err(FilterError::Invalid(format!(
            "invalid filter: it is {} bytes long; the limit is {MAX_FILTER_BYTES} bytes",
            input.len()
        )));
    }
    parse_filter_unbounded(input)
}

/// The parser proper, without the length limit, so tests can show that the
/// depth limit alone keeps arbitrarily long inputs from overflowing the
/// stack.
fn parse_filter_unbounded(input: &str) -> Result<Filter, FilterError> {
    if input.trim().is_empty() {
        return Err(FilterError::Invalid(
            "invalid filter: the filter is empty".into(),
        ));
    }
    let mut parser = Parser::new(input, Context::Filter);
    let (filter, _) = parser.parse_or(false)?;
    let next = parser.peek()?;
    if next.kind != TokenKind::End {
        return Err(parser.unexpected(r#"expected "and", "or" or the end of the filter"#, &next));
    }
    Ok(filter)
}

pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    if input.len() > MAX_FILTER_BYTES {
        return Err(FilterError::InvalidPath(format!(
            "invalid path: it is {} bytes long; the limit is {MAX_FILTER_BYTES} bytes",
            input.len()
        )));
    }
    if input.trim().is_empty() {
        return Err(FilterError::InvalidPath(
            "invalid path: the path is empty".into(),
        ));
    }
    let mut parser = Parser::new(input, Context::Path);
    let first = parser.advance()?;
    let TokenKind::Word(word) = first.kind else {
        return Err(parser.unexpected("expected an attribute name", &first));
    };
    let attr = parser.attr_path(word, first.start)?;

    let next = parser.peek()?;
    match next.kind {
        TokenKind::End => {
            return Ok(PatchPath {
                attr,
                value_filter: None,
                sub_attr: None,
            });
        }
        TokenKind::LBracket => {}
        _ => {
            return Err(parser.unexpected(r#"expected "[" or the end of the path"#, &next));
        }
    }
    let (value_filter, _) = parser.value_filter(&attr)?;
    let sub_attr = parser.sub_attr_after_value_filter()?;
    Ok(PatchPath {
        attr,
        value_filter: Some(value_filter),
        sub_attr,
    })
}

/// Whether `resource` (a SCIM resource as JSON, attribute names in schema
/// case) matches `filter`, honouring the attributes' types and caseExact
/// rules from `kind`'s schemas.
///
/// Semantics beyond the RFC's wording: `ne` is the negation of `eq` (a
/// missing attribute is "not equal" to anything, and a multi-valued
/// attribute is "not equal" only when no value is equal); `eq null` holds
/// when the attribute is missing or null. Ordering operators on booleans,
/// binaries and complex attributes without a `value` sub-attribute, and
/// dateTime comparisons with a value that is not RFC 3339, are errors.
pub fn matches(filter: &Filter, resource: &Value, kind: ResourceKind) -> Result<bool, FilterError> {
    evaluate(filter, Scope::Resource(resource), kind)
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind<'a> {
    /// An attribute path or a keyword (`and`, `eq`, `true`, ...); which one
    /// depends on where it appears, so the parser decides.
    Word(&'a str),
    Str(String),
    Num(serde_json::Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A `.` that starts a token: only valid after `]` in a PATCH path.
    Dot,
    End,
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    kind: TokenKind<'a>,
    /// Byte offsets into the input.
    start: usize,
    end: usize,
}

/// Which error a failure becomes, and how its message starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Filter,
    Path,
}

impl Context {
    fn error(self, offset: usize, message: impl fmt::Display) -> FilterError {
        match self {
            Context::Filter => {
                FilterError::Invalid(format!("invalid filter at byte {offset}: {message}"))
            }
            Context::Path => {
                FilterError::InvalidPath(format!("invalid path at byte {offset}: {message}"))
            }
        }
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    context: Context,
}

fn is_word_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'$'
}

/// Characters of attribute names plus `:` and `.`, so that a whole
/// (URN-qualified, dotted) attribute path is one token, split later.
fn is_word_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'$' | b':' | b'.')
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str, context: Context) -> Self {
        Lexer {
            input,
            pos: 0,
            context,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.input.as_bytes().get(at).copied()
    }

    fn next_token(&mut self) -> Result<Token<'a>, FilterError> {
        while self.byte(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(first) = self.byte(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let punctuation = match first {
            b'(' => Some(TokenKind::LParen),
            b')' => Some(TokenKind::RParen),
            b'[' => Some(TokenKind::LBracket),
            b']' => Some(TokenKind::RBracket),
            b'.' => Some(TokenKind::Dot),
            _ => None,
        };
        let kind = if let Some(kind) = punctuation {
            self.pos += 1;
            kind
        } else if first == b'"' {
            TokenKind::Str(self.string(start)?)
        } else if first == b'-' || first.is_ascii_digit() {
            TokenKind::Num(self.number(start)?)
        } else if is_word_start(first) {
            while self.byte(self.pos).is_some_and(is_word_char) {
                self.pos += 1;
            }
            TokenKind::Word(&self.input[start..self.pos])
        } else {
            let found = self.input[start..].chars().next().unwrap_or_default();
            return Err(self.context.error(
                start,
                format!("unexpected character {}", quoted(&found.to_string())),
            ));
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    /// A JSON string starting at the `"` at `start`, decoded.
    fn string(&mut self, start: usize) -> Result<String, FilterError> {
        let mut decoded = String::new();
        let mut pos = start + 1;
        loop {
            let Some(c) = self.input.get(pos..).and_then(|rest| rest.chars().next()) else {
                return Err(self
                    .context
                    .error(start, "unterminated string: the closing \" is missing"));
            };
            match c {
                '"' => {
                    self.pos = pos + 1;
                    return Ok(decoded);
                }
                '\\' => {
                    let (unescaped, next) = self.escape(pos)?;
                    decoded.push(unescaped);
                    pos = next;
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.context.error(
                        pos,
                        "control character in a string: write it as a JSON escape such as \\n",
                    ));
                }
                c => {
                    decoded.push(c);
                    pos += c.len_utf8();
                }
            }
        }
    }

    /// The escape sequence whose `\` is at `at`: the character it stands
    /// for and the offset after it.
    fn escape(&self, at: usize) -> Result<(char, usize), FilterError> {
        let simple = match self.byte(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(at),
            Some(_) => {
                let found = self
                    .input
                    .get(at + 1..)
                    .and_then(|r| r.chars().next())
                    .unwrap_or_default();
                return Err(self.context.error(
                    at,
                    format!(
                        "invalid escape \"\\{found}\" in a string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                    ),
                ));
            }
            None => {
                return Err(self
                    .context
                    .error(at, "unterminated string: it ends with a lone \\"));
            }
        };
        Ok((simple, at + 2))
    }

    /// `\uXXXX` at `at`, including a UTF-16 surrogate pair `\uD83D\uDE00`.
    fn unicode_escape(&self, at: usize) -> Result<(char, usize), FilterError> {
        let high = self.hex4(at)?;
        if (0xDC00..0xE000).contains(&high) {
            return Err(self.context.error(
                at,
                "invalid \\u escape: a low surrogate without a preceding high surrogate",
            ));
        }
        if !(0xD800..0xDC00).contains(&high) {
            let c =
                char::from_u32(high).ok_or_else(|| self.context.error(at, "invalid \\u escape"))?;
            return Ok((c, at + 6));
        }
        let low_at = at + 6;
        let low = if self.input.get(low_at..low_at + 2) == Some("\\u") {
            self.hex4(low_at)?
        } else {
            0
        };
        if !(0xDC00..0xE000).contains(&low) {
            return Err(self.context.error(
                at,
                "invalid \\u escape: a high surrogate must be followed by a \\u low surrogate",
            ));
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        let c = char::from_u32(code).ok_or_else(|| self.context.error(at, "invalid \\u escape"))?;
        Ok((c, low_at + 6))
    }

    /// The four hex digits after the `\u` at `at`.
    fn hex4(&self, at: usize) -> Result<u32, FilterError> {
        self.input
            .get(at + 2..at + 6)
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .ok_or_else(|| {
                self.context
                    .error(at, "invalid \\u escape: expected four hex digits")
            })
    }

    /// A JSON number starting at `start`. The scan takes the whole run of
    /// characters that could belong to it, so that `01`, `1abc` or an
    /// unquoted date `2011-05-13` are reported as one bad value rather
    /// than as a number followed by a confusing second token.
    fn number(&mut self, start: usize) -> Result<serde_json::Number, FilterError> {
        let mut end = start + 1;
        while self.byte(end).is_some_and(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_' | b':')
        }) {
            end += 1;
        }
        let text = &self.input[start..end];
        self.pos = end;
        serde_json::from_str::<serde_json::Number>(text).map_err(|_| {
            self.context.error(
                start,
                format!(
                    "{} is not a valid JSON number (strings must be in double quotes)",
                    quoted(text)
                ),
            )
        })
    }
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

const OPERATORS_EXPECTED: &str =
    "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)";
const NAME_RULE: &str =
    r#"attribute names start with a letter and contain only letters, digits, "-" and "_""#;

/// A parsed sub-filter and its depth (see the module documentation).
type Parsed = (Filter, usize);

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    context: Context,
    /// Groups (`(`, `not (`, `[`) entered and not yet closed.
    open_groups: usize,
    /// End offset of the last token taken with `advance`.
    last_end: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, context: Context) -> Self {
        Parser {
            lexer: Lexer::new(input, context),
            peeked: None,
            context,
            open_groups: 0,
            last_end: 0,
        }
    }

    fn peek(&mut self) -> Result<Token<'a>, FilterError> {
        if let Some(token) = &self.peeked {
            return Ok(token.clone());
        }
        let token = self.lexer.next_token()?;
        self.peeked = Some(token.clone());
        Ok(token)
    }

    fn advance(&mut self) -> Result<Token<'a>, FilterError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        self.last_end = token.end;
        Ok(token)
    }

    fn peek_is_keyword(&mut self, keyword: &str) -> Result<bool, FilterError> {
        Ok(matches!(self.peek()?.kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(keyword)))
    }

    fn error(&self, offset: usize, message: impl fmt::Display) -> FilterError {
        self.context.error(offset, message)
    }

    fn unexpected(&self, expected: &str, found: &Token<'_>) -> FilterError {
        let found_text = describe(found, self.lexer.input, self.context);
        self.error(found.start, format!("{expected}, found {found_text}"))
    }

    /// Rejects a sub-filter of depth `depth` whose construct starts at
    /// `offset`, if it would make the whole filter too deep.
    fn check_depth(&self, offset: usize, depth: usize) -> Result<usize, FilterError> {
        if self.open_groups + depth > MAX_FILTER_DEPTH {
            return Err(self.error(
                offset,
                format!(
                    "the filter is nested more than {MAX_FILTER_DEPTH} levels deep (each and, or, not, \
                     parenthesised group and value filter counts as a level)"
                ),
            ));
        }
        Ok(depth)
    }

    /// `filter ("or" filter)*`, left-associative, iterative so long chains
    /// cost no stack.
    fn parse_or(&mut self, in_value_filter: bool) -> Result<Parsed, FilterError> {
        let (mut left, mut depth) = self.parse_and(in_value_filter)?;
        while self.peek_is_keyword("or")? {
            let keyword = self.advance()?;
            let (right, right_depth) = self.parse_and(in_value_filter)?;
            depth = self.check_depth(keyword.start, depth.max(right_depth) + 1)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    fn parse_and(&mut self, in_value_filter: bool) -> Result<Parsed, FilterError> {
        let (mut left, mut depth) = self.parse_unary(in_value_filter)?;
        while self.peek_is_keyword("and")? {
            let keyword = self.advance()?;
            let (right, right_depth) = self.parse_unary(in_value_filter)?;
            depth = self.check_depth(keyword.start, depth.max(right_depth) + 1)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    /// `"not" "(" filter ")"`, `"(" filter ")"`, or an attribute expression.
    fn parse_unary(&mut self, in_value_filter: bool) -> Result<Parsed, FilterError> {
        let token = self.advance()?;
        match token.kind {
            TokenKind::LParen => self.group(token.start, in_value_filter, TokenKind::RParen),
            // `not` is reserved here: the grammar would also allow an
            // attribute called "not", but no SCIM schema has one and
            // treating it as a keyword gives far better error messages.
            TokenKind::Word(word) if word.eq_ignore_ascii_case("not") => {
                let open = self.advance()?;
                if open.kind != TokenKind::LParen {
                    return Err(self.unexpected(r#"expected "(" after "not""#, &open));
                }
                let (inner, depth) = self.group(token.start, in_value_filter, TokenKind::RParen)?;
                Ok((Filter::Not(Box::new(inner)), depth))
            }
            // Likewise "and"/"or" here are far likelier a doubled or
            // misplaced operator than an attribute name.
            TokenKind::Word(word)
                if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") =>
            {
                Err(self.unexpected(r#"expected an attribute name, "(" or "not""#, &token))
            }
            TokenKind::Word(word) => self.attribute_expression(word, token.start, in_value_filter),
            _ => Err(self.unexpected(r#"expected an attribute name, "(" or "not""#, &token)),
        }
    }

    /// The inside of a group whose opening token (already consumed) is at
    /// `offset`, up to and including `close`. Returns the inner filter and
    /// the group's depth (the inner depth plus one).
    fn group(
        &mut self,
        offset: usize,
        in_value_filter: bool,
        close: TokenKind<'static>,
    ) -> Result<Parsed, FilterError> {
        self.open_groups += 1;
        self.check_depth(offset, 0)?;
        let (inner, depth) = self.parse_or(in_value_filter)?;
        let end = self.advance()?;
        if end.kind != close {
            let expected = if close == TokenKind::RParen {
                r#"expected "and", "or" or ")""#
            } else {
                r#"expected "and", "or" or "]""#
            };
            return Err(self.unexpected(expected, &end));
        }
        self.open_groups -= 1;
        let depth = self.check_depth(offset, depth + 1)?;
        Ok((inner, depth))
    }

    /// `attrPath "[" valFilter "]"` with the `[` not yet consumed.
    fn value_filter(&mut self, path: &AttrPath) -> Result<Parsed, FilterError> {
        let open = self.advance()?;
        if path.sub_attr.is_some() {
            return Err(self.error(
                open.start,
                format!(
                    "a value filter applies to a multi-valued attribute, not to the sub-attribute {}",
                    quoted(&path.to_string())
                ),
            ));
        }
        self.group(open.start, true, TokenKind::RBracket)
    }

    /// The optional `.subAttr` right after a PATCH path's `]` (no spaces,
    /// as in `emails[type eq "work"].value`), then the end of the path.
    fn sub_attr_after_value_filter(&mut self) -> Result<Option<String>, FilterError> {
        let close_end = self.last_end;
        let dot = self.advance()?;
        match dot.kind {
            TokenKind::End => return Ok(None),
            TokenKind::Dot if dot.start == close_end => {}
            _ => {
                return Err(self.unexpected(
                    r#"expected ".subAttribute" right after "]", or the end of the path"#,
                    &dot,
                ));
            }
        }
        let name = self.advance()?;
        let TokenKind::Word(word) = name.kind else {
            return Err(self.unexpected(r#"expected a sub-attribute name right after ".""#, &name));
        };
        if name.start != dot.end {
            return Err(self.unexpected(r#"expected a sub-attribute name right after ".""#, &name));
        }
        if !is_attr_name(word) {
            return Err(self.error(
                name.start,
                format!(
                    "{} is not a valid sub-attribute name: {NAME_RULE}",
                    quoted(word)
                ),
            ));
        }
        let end = self.advance()?;
        if end.kind != TokenKind::End {
            return Err(self.unexpected("expected the end of the path", &end));
        }
        Ok(Some(word.to_string()))
    }

    /// `attrPath "pr"`, `attrPath compareOp compValue`, or a value path,
    /// with the attribute path `word` at `offset` already consumed.
    fn attribute_expression(
        &mut self,
        word: &str,
        offset: usize,
        in_value_filter: bool,
    ) -> Result<Parsed, FilterError> {
        let path = self.attr_path(word, offset)?;
        let next = self.peek()?;
        if next.kind == TokenKind::LBracket {
            if in_value_filter {
                return Err(self.error(next.start, "value filters cannot be nested"));
            }
            let (inner, depth) = self.value_filter(&path)?;
            let after = self.peek()?;
            if after.kind == TokenKind::Dot {
                // Not in RFC 7644's grammar, but what Entra ID sends to
                // match users: `emails[type eq "work"].value eq "x"`. It
                // means `emails[type eq "work" and value eq "x"]`.
                let (condition, _) = self.sub_attr_condition()?;
                // Written out (Display), an `or` joined this way takes
                // parentheses, `emails[(a or b) and value eq "x"]`: one
                // level more than was read, counted here so that the
                // canonical form of every accepted filter parses too (the
                // filter fuzz target found one that did not).
                let implied_group = usize::from(matches!(inner, Filter::Or(..)));
                let depth = self.check_depth(after.start, depth + 1 + implied_group)?;
                let filter = Filter::ValuePath {
                    path,
                    filter: Box::new(Filter::And(Box::new(inner), Box::new(condition))),
                };
                return Ok((filter, depth));
            }
            let filter = Filter::ValuePath {
                path,
                filter: Box::new(inner),
            };
            return Ok((filter, depth));
        }

        let operator = self.advance()?;
        let TokenKind::Word(op_word) = operator.kind else {
            return Err(self.unexpected(OPERATORS_EXPECTED, &operator));
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok((Filter::Present(path), 0));
        }
        let Some(op) = compare_op(op_word) else {
            return Err(self.unexpected(OPERATORS_EXPECTED, &operator));
        };
        let value = self.comparison_value(op, op_word)?;
        Ok((Filter::Compare { path, op, value }, 0))
    }

    /// `.subAttr op value` (or `.subAttr pr`) right after a value filter's
    /// `]`, as a condition on the selected elements.
    fn sub_attr_condition(&mut self) -> Result<Parsed, FilterError> {
        let close_end = self.last_end;
        let dot = self.advance()?;
        if dot.start != close_end {
            return Err(self.unexpected(r#"expected ".subAttribute" right after "]""#, &dot));
        }
        let name = self.advance()?;
        let TokenKind::Word(word) = name.kind else {
            return Err(self.unexpected(r#"expected a sub-attribute name right after ".""#, &name));
        };
        if name.start != dot.end || !is_attr_name(word) {
            return Err(self.unexpected(r#"expected a sub-attribute name right after ".""#, &name));
        }
        let sub = AttrPath {
            urn: None,
            name: word.to_string(),
            sub_attr: None,
        };
        let operator = self.advance()?;
        let TokenKind::Word(op_word) = operator.kind else {
            return Err(self.unexpected(OPERATORS_EXPECTED, &operator));
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok((Filter::Present(sub), 0));
        }
        let Some(op) = compare_op(op_word) else {
            return Err(self.unexpected(OPERATORS_EXPECTED, &operator));
        };
        let value = self.comparison_value(op, op_word)?;
        Ok((
            Filter::Compare {
                path: sub,
                op,
                value,
            },
            0,
        ))
    }

    fn comparison_value(&mut self, op: CompareOp, op_word: &str) -> Result<CompValue, FilterError> {
        let token = self.advance()?;
        let value = match token.kind {
            TokenKind::Str(text) => CompValue::Str(text),
            TokenKind::Num(number) => CompValue::Num(number),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            TokenKind::Word(word) if word.eq_ignore_ascii_case("null") => CompValue::Null,
            TokenKind::Word(word) => {
                return Err(self.error(
                    token.start,
                    format!(
                        "expected a comparison value (a string, number, true, false or null) after {}, found \
                         {}; strings must be in double quotes",
                        quoted(op_word),
                        quoted(word)
                    ),
                ));
            }
            _ => {
                let expected = format!(
                    "expected a comparison value (a string, number, true, false or null) after {}",
                    quoted(op_word)
                );
                return Err(self.unexpected(&expected, &token));
            }
        };
        if is_ordering(op) && matches!(value, CompValue::Bool(_) | CompValue::Null) {
            return Err(self.error(
                token.start,
                format!(
                    "{} cannot compare with {value}: ordering operators need a string, number or dateTime",
                    quoted(&op.to_string())
                ),
            ));
        }
        Ok(value)
    }

    /// Splits an attribute-path token at `offset` into URN, name and
    /// sub-attribute. The URN is everything before the last `:`, since
    /// schema URNs contain both `:` and `.` (`...:enterprise:2.0:User`)
    /// while attribute names contain neither.
    fn attr_path(&self, word: &str, offset: usize) -> Result<AttrPath, FilterError> {
        let is_urn = word
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"));
        let (urn, rest, rest_offset) = if is_urn {
            // `rfind` always succeeds: the word starts with "urn:".
            let colon = word.rfind(':').unwrap_or(3);
            let urn = &word[..colon];
            if colon == 3 || urn.split(':').any(str::is_empty) {
                return Err(self.error(
                    offset,
                    format!(
                        "{} is not a valid URN-qualified attribute (expected e.g. \
                         urn:ietf:params:scim:schemas:core:2.0:User:userName)",
                        quoted(word)
                    ),
                ));
            }
            (
                Some(urn.to_string()),
                &word[colon + 1..],
                offset + colon + 1,
            )
        } else {
            if let Some(colon) = word.find(':') {
                return Err(self.error(
                    offset + colon,
                    format!(
                        "unexpected \":\" in {}: schema-qualified attributes start with \"urn:\"",
                        quoted(word)
                    ),
                ));
            }
            (None, word, offset)
        };

        let mut parts = rest.splitn(3, '.');
        let name = parts.next().unwrap_or_default();
        let sub_attr = parts.next();
        if !is_attr_name(name) {
            return Err(self.error(rest_offset, self.bad_name_message(name, word)));
        }
        if let Some(sub) = sub_attr
            && !is_attr_name(sub)
        {
            return Err(self.error(
                rest_offset + name.len() + 1,
                self.bad_name_message(sub, word),
            ));
        }
        if parts.next().is_some() {
            let second_dot = name.len() + 1 + sub_attr.map_or(0, str::len);
            return Err(self.error(
                rest_offset + second_dot,
                format!(
                    "{}: only one level of sub-attribute is allowed",
                    quoted(word)
                ),
            ));
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub_attr: sub_attr.map(str::to_string),
        })
    }

    fn bad_name_message(&self, name: &str, word: &str) -> String {
        if name.is_empty() {
            format!("expected an attribute name in {}", quoted(word))
        } else {
            format!(
                "{} is not a valid attribute name: {NAME_RULE}",
                quoted(name)
            )
        }
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus the `$ref` sub-attribute.
fn is_attr_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        _ => name.eq_ignore_ascii_case("$ref"),
    }
}

fn compare_op(word: &str) -> Option<CompareOp> {
    const OPS: [(&str, CompareOp); 9] = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ];
    OPS.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, op)| op)
}

fn is_ordering(op: CompareOp) -> bool {
    matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    )
}

/// `text` in double quotes, shortened so that a huge token cannot blow
/// up an error message.
fn quoted(text: &str) -> String {
    format!("\"{}\"", shortened(text))
}

fn shortened(text: &str) -> String {
    const LIMIT: usize = 40;
    if text.len() <= LIMIT {
        return text.to_string();
    }
    let mut cut = LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// How an unexpected token is named in an error message.
fn describe(token: &Token<'_>, input: &str, context: Context) -> String {
    let source = input.get(token.start..token.end).unwrap_or_default();
    match &token.kind {
        TokenKind::End => match context {
            Context::Filter => "the end of the filter".into(),
            Context::Path => "the end of the path".into(),
        },
        TokenKind::Str(_) => format!("the string {}", shortened(source)),
        TokenKind::Num(_) => format!("the number {source}"),
        _ => quoted(source),
    }
}

// ---------------------------------------------------------------------------
// Display: the canonical filter syntax, which parses back to the same AST.
// ---------------------------------------------------------------------------

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        })
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(text) => write_json_string(f, text),
            CompValue::Num(number) => write!(f, "{number}"),
            CompValue::Bool(value) => write!(f, "{value}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

fn write_json_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                // `or` is left-associative: a right-hand `or` needs its parentheses.
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(
                    f,
                    right,
                    matches!(**right, Filter::Or(..) | Filter::And(..)),
                )
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parenthesise: bool) -> fmt::Result {
    if parenthesise {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.value_filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// What the paths of a filter are relative to.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A whole resource.
    Resource(&'a Value),
    /// One element of the multi-valued (or single complex) attribute
    /// `parent`, inside a value filter.
    Element {
        parent: &'a AttrPath,
        element: &'a Value,
    },
}

fn evaluate(filter: &Filter, scope: Scope<'_>, kind: ResourceKind) -> Result<bool, FilterError> {
    match filter {
        Filter::And(left, right) => {
            Ok(evaluate(left, scope, kind)? && evaluate(right, scope, kind)?)
        }
        Filter::Or(left, right) => {
            Ok(evaluate(left, scope, kind)? || evaluate(right, scope, kind)?)
        }
        Filter::Not(inner) => Ok(!evaluate(inner, scope, kind)?),
        Filter::Present(path) => {
            let target = Target::locate(scope, path, kind, Purpose::Presence);
            Ok(target.values.iter().any(|value| is_present(value)))
        }
        Filter::Compare { path, op, value } => {
            let target = Target::locate(scope, path, kind, Purpose::Comparison);
            target.compare(path, *op, value)
        }
        Filter::ValuePath { path, filter } => {
            let Scope::Resource(resource) = scope else {
                return Err(FilterError::Invalid(
                    "invalid filter: value filters cannot be nested".into(),
                ));
            };
            let Some(node) = attribute_node(resource, path, kind) else {
                return Ok(false);
            };
            for element in as_list(node) {
                if element.is_object()
                    && evaluate(
                        filter,
                        Scope::Element {
                            parent: path,
                            element,
                        },
                        kind,
                    )?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// How values of an attribute compare, from its schema definition.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// `None` when the schema does not know the attribute: values then
    /// compare by their JSON type, strings case-insensitively.
    ty: Option<AttrType>,
    case_exact: bool,
}

impl Rules {
    const UNKNOWN: Rules = Rules {
        ty: None,
        case_exact: false,
    };

    fn of(attribute: &Attribute) -> Rules {
        Rules {
            ty: Some(attribute.ty),
            case_exact: attribute.case_exact,
        }
    }
}

/// Why a path's values are wanted: a comparison with a complex attribute
/// looks at its "value" sub-attribute, `pr` at the attribute itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Comparison,
    Presence,
}

/// The values a path selects in a scope, flattened across multi-valued
/// attributes, and how they compare.
struct Target<'v> {
    values: Vec<&'v Value>,
    rules: Rules,
}

impl<'v> Target<'v> {
    fn locate(
        scope: Scope<'v>,
        path: &AttrPath,
        kind: ResourceKind,
        purpose: Purpose,
    ) -> Target<'v> {
        match scope {
            Scope::Resource(resource) => Self::in_resource(resource, path, kind, purpose),
            Scope::Element { parent, element } => Self::in_element(element, parent, path, kind),
        }
    }

    fn in_resource(
        resource: &'v Value,
        path: &AttrPath,
        kind: ResourceKind,
        purpose: Purpose,
    ) -> Target<'v> {
        let resolved = resolve(kind, path);
        let node = attribute_node(resource, path, kind);
        let mut values = Vec::new();
        if let Some(sub) = &path.sub_attr {
            for element in node.map(as_list).unwrap_or_default() {
                if let Some(value) = get_ci(element, sub) {
                    values.extend(as_list(value));
                }
            }
            let rules = match resolved.and_then(|r| r.sub_attribute) {
                Some(sub_attribute) => Rules::of(sub_attribute),
                None if is_meta_timestamp(path) => Rules {
                    ty: Some(AttrType::DateTime),
                    case_exact: false,
                },
                None => Rules::UNKNOWN,
            };
            return Target { values, rules };
        }

        let attribute = resolved.map(|r| r.attribute);
        let is_complex = attribute.is_some_and(|a| a.ty == AttrType::Complex);
        if purpose == Purpose::Presence {
            values.extend(node);
            return Target {
                values,
                rules: attribute.map_or(Rules::UNKNOWN, Rules::of),
            };
        }
        for element in node.map(as_list).unwrap_or_default() {
            // RFC 7644 §3.4.2.2: a filter on a complex attribute without a
            // sub-attribute (`emails co "@x"`, Entra's `members eq "id"`)
            // applies to its "value" sub-attribute.
            if is_complex || (attribute.is_none() && element.is_object()) {
                if let Some(value) = get_ci(element, "value") {
                    values.extend(as_list(value));
                }
            } else {
                values.push(element);
            }
        }
        let rules = match attribute {
            Some(attribute) if attribute.ty == AttrType::Complex => attribute
                .sub_attributes
                .iter()
                .find(|sub| sub.name.eq_ignore_ascii_case("value"))
                .map_or(
                    Rules {
                        ty: Some(AttrType::Complex),
                        case_exact: false,
                    },
                    Rules::of,
                ),
            Some(attribute) => Rules::of(attribute),
            None => Rules::UNKNOWN,
        };
        Target { values, rules }
    }

    /// `path` inside a value filter on `parent`: `type` in
    /// `emails[type eq "work"]` is `emails.type` of one element.
    fn in_element(
        element: &'v Value,
        parent: &AttrPath,
        path: &AttrPath,
        kind: ResourceKind,
    ) -> Target<'v> {
        let mut values = Vec::new();
        if let Some(value) = get_ci(element, &path.name) {
            match &path.sub_attr {
                Some(sub) => {
                    for item in as_list(value) {
                        if let Some(inner) = get_ci(item, sub) {
                            values.extend(as_list(inner));
                        }
                    }
                }
                None => values.extend(as_list(value)),
            }
        }
        let full_path = AttrPath {
            urn: parent.urn.clone(),
            name: parent.name.clone(),
            sub_attr: Some(path.name.clone()),
        };
        let rules = match resolve(kind, &full_path).and_then(|r| r.sub_attribute) {
            Some(sub_attribute) if path.sub_attr.is_none() => Rules::of(sub_attribute),
            _ => Rules::UNKNOWN,
        };
        Target { values, rules }
    }

    fn compare(
        &self,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<bool, FilterError> {
        let operand = Operand::prepare(path, op, value, self.rules)?;
        match op {
            CompareOp::Eq => Ok(self.any_equal(&operand)),
            CompareOp::Ne => Ok(!self.any_equal(&operand)),
            _ => Ok(self
                .values
                .iter()
                .any(|candidate| operand.test(op, candidate, self.rules))),
        }
    }

    fn any_equal(&self, operand: &Operand<'_>) -> bool {
        if let Operand::Null = operand {
            return self.values.iter().all(|value| value.is_null());
        }
        self.values
            .iter()
            .any(|candidate| operand.test(CompareOp::Eq, candidate, self.rules))
    }
}

/// A comparison value checked against the attribute's rules once, before
/// looking at any candidate, so type errors do not depend on the data.
enum Operand<'f> {
    Str { raw: &'f str, folded: String },
    DateTime(DateTime<FixedOffset>),
    Num(&'f serde_json::Number),
    Bool(bool),
    Null,
}

impl<'f> Operand<'f> {
    fn prepare(
        path: &AttrPath,
        op: CompareOp,
        value: &'f CompValue,
        rules: Rules,
    ) -> Result<Operand<'f>, FilterError> {
        if is_ordering(op) {
            let unordered = match rules.ty {
                Some(AttrType::Boolean) => Some("boolean"),
                Some(AttrType::Binary) => Some("binary"),
                Some(AttrType::Complex) => Some("complex"),
                _ => None,
            };
            if let Some(type_name) = unordered {
                return Err(FilterError::Invalid(format!(
                    "invalid filter: \"{op}\" cannot be used on the {type_name} attribute \"{path}\""
                )));
            }
            if matches!(value, CompValue::Bool(_) | CompValue::Null) {
                return Err(FilterError::Invalid(format!(
                    "invalid filter: \"{op}\" cannot compare with {value}"
                )));
            }
        }
        Ok(match value {
            CompValue::Str(text)
                if rules.ty == Some(AttrType::DateTime)
                    && !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) =>
            {
                let instant = DateTime::parse_from_rfc3339(text).map_err(|_| {
                    FilterError::Invalid(format!(
                        "invalid filter: {value} is not an RFC 3339 dateTime such as \"2011-05-13T04:42:34Z\" (comparing with \"{path}\")"
                    ))
                })?;
                Operand::DateTime(instant)
            }
            CompValue::Str(text) => Operand::Str {
                raw: text,
                folded: if rules.case_exact {
                    String::new()
                } else {
                    text.to_lowercase()
                },
            },
            CompValue::Num(number) => Operand::Num(number),
            CompValue::Bool(flag) => Operand::Bool(*flag),
            CompValue::Null => Operand::Null,
        })
    }

    /// Whether `candidate op self` holds; values of another JSON type
    /// never match.
    fn test(&self, op: CompareOp, candidate: &Value, rules: Rules) -> bool {
        match (self, candidate) {
            (Operand::Str { raw, folded }, Value::String(stored)) => {
                if rules.case_exact {
                    compare_strings(op, stored, raw)
                } else {
                    compare_strings(op, &stored.to_lowercase(), folded)
                }
            }
            // Clients sometimes quote booleans (`active eq "true"`).
            (Operand::Str { raw, .. }, Value::Bool(stored))
                if rules.ty == Some(AttrType::Boolean) =>
            {
                op == CompareOp::Eq
                    && raw.eq_ignore_ascii_case(if *stored { "true" } else { "false" })
            }
            (Operand::DateTime(wanted), Value::String(stored)) => {
                DateTime::parse_from_rfc3339(stored)
                    .is_ok_and(|stored| ordering_holds(op, stored.cmp(wanted)))
            }
            (Operand::Num(wanted), Value::Number(stored)) => {
                compare_numbers(stored, wanted).is_some_and(|order| ordering_holds(op, order))
            }
            (Operand::Bool(wanted), Value::Bool(stored)) => op == CompareOp::Eq && stored == wanted,
            _ => false,
        }
    }
}

fn compare_strings(op: CompareOp, stored: &str, wanted: &str) -> bool {
    match op {
        CompareOp::Co => stored.contains(wanted),
        CompareOp::Sw => stored.starts_with(wanted),
        CompareOp::Ew => stored.ends_with(wanted),
        _ => ordering_holds(op, stored.cmp(wanted)),
    }
}

/// For `eq`/`ne` and the ordering operators; `co`/`sw`/`ew` on a
/// non-string never hold.
fn ordering_holds(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// RFC 7644 `pr`: a value that is not null, not an empty string and not
/// an empty array or object. Containers count when one of their direct
/// members is itself non-empty; looking no deeper keeps this bounded.
fn is_present(value: &Value) -> bool {
    fn non_empty(value: &Value) -> bool {
        match value {
            Value::Null => false,
            Value::String(text) => !text.is_empty(),
            Value::Array(items) => !items.is_empty(),
            Value::Object(members) => !members.is_empty(),
            Value::Bool(_) | Value::Number(_) => true,
        }
    }
    match value {
        Value::Array(items) => items.iter().any(non_empty),
        Value::Object(members) => members.values().any(non_empty),
        other => non_empty(other),
    }
}

/// Whether `path` is `meta.created`/`meta.lastModified`, which are
/// dateTimes even when the schema does not describe `meta`.
fn is_meta_timestamp(path: &AttrPath) -> bool {
    path.name.eq_ignore_ascii_case("meta")
        && path.sub_attr.as_deref().is_some_and(|sub| {
            sub.eq_ignore_ascii_case("created") || sub.eq_ignore_ascii_case("lastModified")
        })
}

/// The value stored for `path`'s attribute (ignoring its sub-attribute):
/// extension attributes live under their schema URN.
fn attribute_node<'v>(
    resource: &'v Value,
    path: &AttrPath,
    kind: ResourceKind,
) -> Option<&'v Value> {
    let container = match resolve(kind, path) {
        Some(resolved) if resolved.extension => get_ci(resource, resolved.schema.id)?,
        Some(_) => resource,
        // Attributes the schema does not know: core attributes sit at the
        // top level, anything else under its URN.
        None => match &path.urn {
            Some(urn) if !is_core_schema(kind, urn) => get_ci(resource, urn)?,
            _ => resource,
        },
    };
    get_ci(container, &path.name)
}

fn is_core_schema(kind: ResourceKind, urn: &str) -> bool {
    let core = match kind {
        ResourceKind::User => USER_SCHEMA,
        ResourceKind::Group => GROUP_SCHEMA,
    };
    urn.eq_ignore_ascii_case(core)
}

/// An object member by name, exact spelling first, then ignoring ASCII
/// case (attribute names and schema URNs are ASCII).
fn get_ci<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, member)| member)
    })
}

/// The values of a possibly multi-valued attribute; null is no value.
fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn path(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub_attr: None,
        }
    }

    fn sub(name: &str, sub_attr: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub_attr: Some(sub_attr.into()),
        }
    }

    fn cmp(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn s(text: &str) -> CompValue {
        CompValue::Str(text.into())
    }

    fn num(n: i64) -> CompValue {
        CompValue::Num(n.into())
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn parse(input: &str) -> Filter {
        match parse_filter(input) {
            Ok(filter) => filter,
            Err(error) => panic!("{input:?} should parse: {error}"),
        }
    }

    fn invalid(input: &str) -> String {
        match parse_filter(input) {
            Err(FilterError::Invalid(message)) => message,
            other => panic!("{input:?} should be an invalid filter, got {other:?}"),
        }
    }

    fn invalid_path(input: &str) -> String {
        match parse_patch_path(input) {
            Err(FilterError::InvalidPath(message)) => message,
            other => panic!("{input:?} should be an invalid path, got {other:?}"),
        }
    }

    fn user_matches(filter: &str, user: &Value) -> bool {
        match matches(&parse(filter), user, ResourceKind::User) {
            Ok(result) => result,
            Err(error) => panic!("{filter:?} should evaluate: {error}"),
        }
    }

    fn group_matches(filter: &str, group: &Value) -> bool {
        match matches(&parse(filter), group, ResourceKind::Group) {
            Ok(result) => result,
            Err(error) => panic!("{filter:?} should evaluate: {error}"),
        }
    }

    /// A user as Okta or Entra ID provision it, after normalization.
    fn okta_user() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                ENTERPRISE
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "bjensen@example.com",
            "displayName": "Babs Jensen",
            "title": "Tour Guide",
            "active": true,
            "name": {
                "givenName": "Barbara",
                "familyName": "Jensen",
                "formatted": "Ms. Barbara J Jensen III"
            },
            "emails": [
                {"value": "bjensen@corp.example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [],
            "addresses": [
                {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}
            ],
            "groups": [
                {"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}
            ],
            ENTERPRISE: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff590\"",
                "location": "https://example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"
            }
        })
    }

    /// A deactivated user with the attributes Entra ID often leaves out.
    fn entra_user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "5e1b2f0c",
            "externalId": "a6c9dd2e-5c1a-4c43-9e0f-7b3bb1d6a0f1",
            "userName": "Ryan.Leenay@contoso.onmicrosoft.com",
            "active": false,
            "displayName": "",
            "emails": [{"value": "ryan@contoso.com", "type": "work", "primary": true}],
            "meta": {
                "resourceType": "User",
                "created": "2024-02-01T10:00:00.123+01:00",
                "lastModified": "2024-02-01T09:00:00.123Z"
            }
        })
    }

    fn group() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Tour Guides",
            "members": [
                {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"}
            ]
        })
    }

    // ---- parsing -------------------------------------------------------

    #[test]
    fn parses_simple_comparisons() {
        assert_eq!(
            parse(r#"userName eq "bjensen""#),
            cmp(path("userName"), CompareOp::Eq, s("bjensen"))
        );
        assert_eq!(parse("title pr"), Filter::Present(path("title")));
        assert_eq!(
            parse("active eq true"),
            cmp(path("active"), CompareOp::Eq, CompValue::Bool(true))
        );
        assert_eq!(
            parse("active eq FALSE"),
            cmp(path("active"), CompareOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(
            parse("title eq Null"),
            cmp(path("title"), CompareOp::Eq, CompValue::Null)
        );
    }

    #[test]
    fn parses_every_operator_case_insensitively() {
        let operators = [
            ("eq", CompareOp::Eq),
            ("NE", CompareOp::Ne),
            ("Co", CompareOp::Co),
            ("sW", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("GT", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("Lt", CompareOp::Lt),
            ("lE", CompareOp::Le),
        ];
        for (word, op) in operators {
            assert_eq!(
                parse(&format!(r#"title {word} "x""#)),
                cmp(path("title"), op, s("x")),
                "{word}"
            );
        }
        assert_eq!(parse("title PR"), Filter::Present(path("title")));
    }

    #[test]
    fn parses_numbers() {
        assert_eq!(parse("a eq 42"), cmp(path("a"), CompareOp::Eq, num(42)));
        assert_eq!(parse("a gt -7"), cmp(path("a"), CompareOp::Gt, num(-7)));
        let decimal = serde_json::Number::from_f64(1.5).map(CompValue::Num);
        assert_eq!(
            Some(parse("a lt 1.5")),
            decimal.map(|v| cmp(path("a"), CompareOp::Lt, v))
        );
        let exponent = serde_json::Number::from_f64(0.0025).map(CompValue::Num);
        assert_eq!(
            Some(parse("a le 2.5e-3")),
            exponent.map(|v| cmp(path("a"), CompareOp::Le, v))
        );
        let big = serde_json::Number::from_f64(1e10).map(CompValue::Num);
        assert_eq!(
            Some(parse("a ge 1E+10")),
            big.map(|v| cmp(path("a"), CompareOp::Ge, v))
        );
    }

    #[test]
    fn the_canonical_form_of_an_entra_value_path_is_not_too_deep() {
        // `emails[X].value eq "x"` joins X and the condition; an `or` in X
        // is shown in parentheses, a level the input did not have.
        for nots in 26..=31 {
            let inner = format!("{}b pr{}", "not (".repeat(nots), ")".repeat(nots));
            let input = format!(r#"emails[a pr or {inner}].value eq "x""#);
            if let Ok(filter) = parse_filter(&input) {
                assert_eq!(parse(&filter.to_string()), filter, "{input}");
            }
        }
    }

    #[test]
    fn numbers_parse_to_the_nearest_double() {
        // Without serde_json's float_roundtrip this came out one ulp off
        // (found by the filter fuzz target).
        let nearest = serde_json::Number::from_f64(-1.844_674_407_370_955_8e17).map(CompValue::Num);
        assert_eq!(
            Some(parse("n ge -18446744073709557.06151e1")),
            nearest.map(|v| cmp(path("n"), CompareOp::Ge, v))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let a = cmp(path("a"), CompareOp::Eq, num(1));
        let b = cmp(path("b"), CompareOp::Eq, num(2));
        let c = cmp(path("c"), CompareOp::Eq, num(3));
        assert_eq!(
            parse("a eq 1 or b eq 2 and c eq 3"),
            or(a.clone(), and(b.clone(), c.clone()))
        );
        assert_eq!(
            parse("a eq 1 and b eq 2 or c eq 3"),
            or(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("(a eq 1 or b eq 2) and c eq 3"),
            and(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(parse("a eq 1 AND b eq 2 Or c eq 3"), or(and(a, b), c));
    }

    #[test]
    fn and_or_are_left_associative() {
        let a = Filter::Present(path("a"));
        let b = Filter::Present(path("b"));
        let c = Filter::Present(path("c"));
        assert_eq!(
            parse("a pr or b pr or c pr"),
            or(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("a pr and b pr and c pr"),
            and(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(parse("a pr and (b pr and c pr)"), and(a, and(b, c)));
    }

    #[test]
    fn not_binds_tightest() {
        let a = Filter::Present(path("a"));
        let b = Filter::Present(path("b"));
        assert_eq!(parse("not (a pr) and b pr"), and(not(a.clone()), b.clone()));
        assert_eq!(parse("NOT(a pr or b pr)"), not(or(a.clone(), b.clone())));
        assert_eq!(parse("b pr and not ( a pr )"), and(b, not(a.clone())));
        assert_eq!(parse("not(not(a pr))"), not(not(a)));
    }

    #[test]
    fn redundant_parentheses_and_whitespace_are_accepted() {
        let expected = cmp(path("userName"), CompareOp::Eq, s("x"));
        assert_eq!(parse(r#"((userName eq "x"))"#), expected);
        assert_eq!(parse("  userName   eq \t \"x\"  "), expected);
        assert_eq!(parse(r#"userName eq"x""#), expected);
    }

    #[test]
    fn attribute_names_keep_their_spelling() {
        assert_eq!(
            parse(r#"USERNAME eq "x""#),
            cmp(path("USERNAME"), CompareOp::Eq, s("x"))
        );
        assert_eq!(
            parse("name.givenName pr"),
            Filter::Present(sub("name", "givenName"))
        );
        assert_eq!(
            parse("members.$ref pr"),
            Filter::Present(sub("members", "$ref"))
        );
        assert_eq!(parse("x-y_2 pr"), Filter::Present(path("x-y_2")));
    }

    #[test]
    fn parses_urn_qualified_paths() {
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            cmp(
                AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
                    name: "userName".into(),
                    sub_attr: None,
                },
                CompareOp::Sw,
                s("J")
            )
        );
        assert_eq!(
            parse(&format!(r#"{ENTERPRISE}:manager.value eq "26118915""#)),
            cmp(
                AttrPath {
                    urn: Some(ENTERPRISE.into()),
                    name: "manager".into(),
                    sub_attr: Some("value".into()),
                },
                CompareOp::Eq,
                s("26118915")
            )
        );
    }

    #[test]
    fn decodes_string_escapes() {
        let cases = [
            (r#""a\"b""#, "a\"b"),
            (r#""a\\b""#, "a\\b"),
            (r#""a\/b""#, "a/b"),
            (r#""a\nb\tc\rd\be\ff""#, "a\nb\tc\rd\u{8}e\u{c}f"),
            (r#""\u00e9t\u00C9""#, "étÉ"),
            (r#""\ud83d\ude00!""#, "😀!"),
            (r#""déjà vu 😀""#, "déjà vu 😀"),
            (r#""""#, ""),
        ];
        for (literal, decoded) in cases {
            assert_eq!(
                parse(&format!("displayName eq {literal}")),
                cmp(path("displayName"), CompareOp::Eq, s(decoded)),
                "{literal}"
            );
        }
    }

    #[test]
    fn parses_value_paths() {
        let inner = and(
            cmp(path("type"), CompareOp::Eq, s("work")),
            cmp(path("value"), CompareOp::Co, s("@corp")),
        );
        let value_path = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(inner),
        };
        assert_eq!(
            parse(r#"emails[type eq "work" and value co "@corp"]"#),
            value_path
        );
        assert_eq!(
            parse(r#"userType eq "Employee" and emails[type eq "work" and value co "@corp"]"#),
            and(
                cmp(path("userType"), CompareOp::Eq, s("Employee")),
                value_path.clone()
            )
        );
        let complex =
            parse(r#"emails[not (type eq "home") or (primary eq true and value pr)] or title pr"#);
        let Filter::Or(left, _) = complex else {
            panic!("expected or, got {complex:?}");
        };
        assert!(matches!(*left, Filter::ValuePath { .. }));
    }

    #[test]
    fn display_round_trips() {
        let inputs = [
            r#"userName eq "bjensen""#,
            "a eq 1 or b eq 2 and c eq 3",
            "(a eq 1 or b eq 2) and c eq 3",
            "a pr or (b pr or c pr)",
            "a pr and (b pr and c pr)",
            r#"not (a pr) and emails[type eq "work" and not (value ew "x\"y\\z\n")]"#,
            &format!(
                r#"{ENTERPRISE}:manager.value eq "x" and meta.lastModified gt "2011-05-13T04:42:34Z""#
            ),
            "a ge 2.5 and b eq null and c eq false",
        ];
        for input in inputs {
            let filter = parse(input);
            let shown = filter.to_string();
            assert_eq!(parse(&shown), filter, "{input} -> {shown}");
        }
        assert_eq!(
            parse(r#"(A Eq "x") AND b PR"#).to_string(),
            r#"A eq "x" and b pr"#
        );
    }

    // ---- invalid filters ------------------------------------------------

    #[test]
    fn reports_unknown_operator_with_offset() {
        let message = invalid(r#"userName equals "x""#);
        assert_eq!(
            message,
            r#"invalid filter at byte 9: expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found "equals""#
        );
    }

    #[test]
    fn rejects_unterminated_strings() {
        let message = invalid(r#"userName eq "bjensen"#);
        assert!(message.contains("byte 12"), "{message}");
        assert!(message.contains("unterminated"), "{message}");
        assert!(invalid(r#"userName eq "ends with backslash\"#).contains("unterminated"));
    }

    #[test]
    fn rejects_bad_escapes() {
        assert!(invalid(r#"a eq "\x""#).contains("invalid escape"));
        assert!(invalid(r#"a eq "\u12""#).contains("four hex digits"));
        assert!(invalid(r#"a eq "\u12é""#).contains("four hex digits"));
        assert!(invalid(r#"a eq "\ud83d""#).contains("surrogate"));
        assert!(invalid(r#"a eq "\ud83dx""#).contains("surrogate"));
        assert!(invalid(r#"a eq "\ude00""#).contains("surrogate"));
        assert!(invalid(r#"a eq "\ud83d\u0041""#).contains("surrogate"));
        assert!(invalid("a eq \"tab\there\"").contains("control character"));
    }

    #[test]
    fn rejects_missing_or_bad_values() {
        let message = invalid("userName eq");
        assert_eq!(
            message,
            r#"invalid filter at byte 11: expected a comparison value (a string, number, true, false or null) after "eq", found the end of the filter"#
        );
        assert!(invalid("userName eq bjensen").contains("double quotes"));
        assert!(invalid("userName eq (").contains("comparison value"));
        assert!(invalid("a eq 01").contains("not a valid JSON number"));
        assert!(invalid("a eq 1.").contains("not a valid JSON number"));
        assert!(invalid("a eq -").contains("not a valid JSON number"));
        assert!(invalid("a eq 1e400").contains("not a valid JSON number"));
        assert_eq!(
            invalid("meta.created gt 2011-05-13"),
            r#"invalid filter at byte 16: "2011-05-13" is not a valid JSON number (strings must be in double quotes)"#
        );
        assert!(invalid("a eq 1abc").contains(r#""1abc""#));
        assert_eq!(parse("(a eq 1)"), cmp(path("a"), CompareOp::Eq, num(1)));
        assert_eq!(parse("emails[x eq -1]").to_string(), "emails[x eq -1]");
    }

    #[test]
    fn rejects_ordering_with_booleans_and_null() {
        for input in ["active gt true", "a GE false", "a lt null", "a le TRUE"] {
            let message = invalid(input);
            assert!(message.contains("ordering operators"), "{input}: {message}");
        }
    }

    #[test]
    fn rejects_trailing_tokens() {
        assert_eq!(
            invalid(r#"userName eq "x" "y""#),
            r#"invalid filter at byte 16: expected "and", "or" or the end of the filter, found the string "y""#
        );
        assert!(invalid(r#"userName eq "x")"#).contains(r#"found ")""#));
        assert!(invalid("a pr b pr").contains(r#"found "b""#));
        assert!(invalid("a pr and").contains("the end of the filter"));
        assert_eq!(
            invalid("a pr or or b pr"),
            r#"invalid filter at byte 8: expected an attribute name, "(" or "not", found "or""#
        );
        assert!(invalid("and pr").contains(r#"found "and""#));
    }

    #[test]
    fn rejects_empty_filters() {
        assert_eq!(invalid(""), "invalid filter: the filter is empty");
        assert_eq!(invalid("   "), "invalid filter: the filter is empty");
        assert!(invalid("()").contains(r#"found ")""#));
    }

    #[test]
    fn rejects_unbalanced_groups() {
        assert!(
            invalid(r#"(userName eq "x""#)
                .contains(r#"expected "and", "or" or ")", found the end of the filter"#)
        );
        assert!(invalid(r#"emails[type eq "work""#).contains(r#"expected "and", "or" or "]""#));
        assert!(invalid(r#"emails[type eq "work")"#).contains(r#"found ")""#));
        assert!(invalid("not a pr").contains(r#"expected "(" after "not""#));
        assert!(invalid("not").contains(r#"expected "(" after "not""#));
    }

    #[test]
    fn rejects_bad_attribute_paths() {
        assert!(invalid("name..x pr").contains("expected an attribute name"));
        assert!(invalid("name. pr").contains("expected an attribute name"));
        assert!(invalid("a.b.c pr").contains("only one level"));
        assert!(invalid("1abc pr").contains(r#""1abc" is not a valid JSON number"#));
        assert!(invalid("foo:bar pr").contains(r#"start with "urn:""#));
        assert!(invalid("urn:userName pr").contains("URN-qualified"));
        assert!(invalid("urn::x:userName pr").contains("URN-qualified"));
        assert!(invalid(&format!("{ENTERPRISE}: pr")).contains("expected an attribute name"));
        assert!(invalid("$foo pr").contains("not a valid attribute name"));
        assert!(invalid(r#""userName" eq "x""#).contains("expected an attribute name"));
        assert!(invalid("user@name pr").contains("unexpected character \"@\""));
        assert!(invalid("nämë pr").contains("unexpected character"));
    }

    #[test]
    fn entra_sub_attribute_after_a_value_filter_joins_the_filter() {
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "x""#),
            Filter::ValuePath {
                path: path("emails"),
                filter: Box::new(and(
                    cmp(path("type"), CompareOp::Eq, s("work")),
                    cmp(path("value"), CompareOp::Eq, s("x"))
                )),
            }
        );
        assert!(invalid(r#"emails[type eq "work"] .value eq "x""#).contains("right after"));
        assert!(invalid(r#"emails[type eq "work"].value"#).contains("comparison operator"));
    }

    #[test]
    fn rejects_misplaced_value_filters() {
        assert!(invalid(r#"emails[type eq "work" and x[y pr]]"#).contains("cannot be nested"));
        assert!(invalid(r#"emails.value[type eq "work"]"#).contains("not to the sub-attribute"));
        assert!(invalid("emails[]").contains("expected an attribute name"));
    }

    #[test]
    fn rejects_overlong_filters() {
        let long = format!(r#"userName eq "{}""#, "x".repeat(MAX_FILTER_BYTES));
        assert!(invalid(&long).contains("the limit is 4096 bytes"));
        let just_fits = format!(r#"a eq "{}""#, "x".repeat(MAX_FILTER_BYTES - 7));
        assert_eq!(just_fits.len(), MAX_FILTER_BYTES);
        assert!(parse_filter(&just_fits).is_ok());
    }

    #[test]
    fn depth_limit_counts_groups_not_and_or() {
        let nested = |levels: usize| format!("{}a pr{}", "(".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&nested(MAX_FILTER_DEPTH)).is_ok());
        assert!(invalid(&nested(MAX_FILTER_DEPTH + 1)).contains("nested more than 32 levels"));

        let nots = |levels: usize| format!("{}a pr{}", "not (".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(invalid(&nots(MAX_FILTER_DEPTH + 1)).contains("nested more than"));

        let chain = |terms: usize| vec!["a pr"; terms].join(" or ");
        assert!(parse_filter(&chain(MAX_FILTER_DEPTH + 1)).is_ok());
        assert!(invalid(&chain(MAX_FILTER_DEPTH + 2)).contains("nested more than"));

        let value_path = format!("{}emails[type pr]{}", "(".repeat(30), ")".repeat(30));
        assert!(parse_filter(&value_path).is_ok());
        let value_path = format!("{}emails[(type pr)]{}", "(".repeat(31), ")".repeat(31));
        assert!(invalid(&value_path).contains("nested more than"));
    }

    #[test]
    fn pathological_inputs_fail_cleanly() {
        let parens = "(".repeat(100_000);
        assert!(invalid(&parens).contains("4096 bytes"));
        // Without the length limit the depth limit alone stops the parser.
        let unbounded = parse_filter_unbounded(&parens);
        assert!(
            matches!(unbounded, Err(FilterError::Invalid(m)) if m.contains("nested more than"))
        );

        let nots = "not(".repeat(10_000);
        assert!(invalid(&nots).contains("4096 bytes"));
        let unbounded = parse_filter_unbounded(&nots);
        assert!(
            matches!(unbounded, Err(FilterError::Invalid(m)) if m.contains("nested more than"))
        );

        let within_limit = "not(".repeat(MAX_FILTER_BYTES / 4);
        assert!(invalid(&within_limit).contains("nested more than"));
        let brackets = format!("a{}", "[".repeat(4000));
        assert!(parse_filter(&brackets).is_err());
        let chain = vec!["a pr"; 100_000].join(" and ");
        assert!(parse_filter_unbounded(&chain).is_err());
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "\"",
            "\\",
            "[",
            "]",
            ".",
            "(",
            ")",
            "-",
            "$",
            "urn:",
            "urn",
            "a",
            "a eq",
            "a[",
            "a[b",
            "a[b pr",
            "a[b pr]]",
            "é",
            "😀 eq 1",
            "a eq \"\\u",
            "a eq \"\\ud800\\u",
            "a eq 1e",
            "a eq 1e+",
            "a eq --1",
            "not(",
            "not()",
            "a pr and not(",
            "\u{0}",
            "a eq \"\u{0}\"",
            "a\u{a0}pr",
        ];
        for input in inputs {
            let _ = parse_filter(input);
            let _ = parse_patch_path(input);
        }
    }

    // ---- PATCH paths ----------------------------------------------------

    #[test]
    fn parses_plain_patch_paths() {
        assert_eq!(
            parse_patch_path("name.givenName"),
            Ok(PatchPath {
                attr: sub("name", "givenName"),
                value_filter: None,
                sub_attr: None,
            })
        );
        assert_eq!(
            parse_patch_path("displayName"),
            Ok(PatchPath {
                attr: path("displayName"),
                value_filter: None,
                sub_attr: None,
            })
        );
        for (input, name, sub_attr) in [
            (format!("{ENTERPRISE}:manager"), "manager", None),
            (
                format!("{ENTERPRISE}:employeeNumber"),
                "employeeNumber",
                None,
            ),
            (
                format!("{ENTERPRISE}:manager.value"),
                "manager",
                Some("value".to_string()),
            ),
        ] {
            assert_eq!(
                parse_patch_path(&input),
                Ok(PatchPath {
                    attr: AttrPath {
                        urn: Some(ENTERPRISE.into()),
                        name: name.into(),
                        sub_attr,
                    },
                    value_filter: None,
                    sub_attr: None,
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn parses_value_filter_patch_paths() {
        assert_eq!(
            parse_patch_path(r#"members[value eq "2819c223"]"#),
            Ok(PatchPath {
                attr: path("members"),
                value_filter: Some(cmp(path("value"), CompareOp::Eq, s("2819c223"))),
                sub_attr: None,
            })
        );
        assert_eq!(
            parse_patch_path(r#"emails[type eq "work"].value"#),
            Ok(PatchPath {
                attr: path("emails"),
                value_filter: Some(cmp(path("type"), CompareOp::Eq, s("work"))),
                sub_attr: Some("value".into()),
            })
        );
        assert_eq!(
            parse_patch_path(r#"addresses[type eq "work"].streetAddress"#),
            Ok(PatchPath {
                attr: path("addresses"),
                value_filter: Some(cmp(path("type"), CompareOp::Eq, s("work"))),
                sub_attr: Some("streetAddress".into()),
            })
        );
        let complex = parse_patch_path(
            r#"emails[type eq "work" and (primary eq true or not (value pr))].display"#,
        );
        assert!(
            matches!(
                complex,
                Ok(PatchPath {
                    value_filter: Some(Filter::And(..)),
                    ..
                })
            ),
            "{complex:?}"
        );
        let shown = parse_patch_path(r#"EMAILS[TYPE EQ "work"].Value"#).map(|p| p.to_string());
        assert_eq!(shown, Ok(r#"EMAILS[TYPE eq "work"].Value"#.to_string()));
    }

    #[test]
    fn rejects_bad_patch_paths() {
        assert_eq!(
            invalid_path(r#"emails[type eq "work""#),
            r#"invalid path at byte 21: expected "and", "or" or "]", found the end of the path"#
        );
        assert!(invalid_path("name..x").contains("expected an attribute name"));
        assert!(
            invalid_path(r#"members[value eq "1"]."#).contains("expected a sub-attribute name")
        );
        assert!(
            invalid_path(r#"members[value eq "1"].value.x"#)
                .contains("not a valid sub-attribute name")
        );
        assert!(invalid_path(r#"members[value eq "1"] .value"#).contains("right after"));
        assert!(invalid_path(r#"members[value eq "1"]. value"#).contains("right after"));
        assert!(invalid_path(r#"members[value eq "1"]x"#).contains("right after"));
        assert!(invalid_path(r#"members[value eq "1"].value x"#).contains("end of the path"));
        assert!(invalid_path("").contains("empty"));
        assert!(invalid_path("emails eq").contains(r#"expected "[" or the end of the path"#));
        assert!(invalid_path(r#"emails[type eq "work"][x pr]"#).contains("right after"));
        assert!(invalid_path(r#"emails[x[y pr]]"#).contains("cannot be nested"));
        assert!(invalid_path(r#"name.givenName[x pr]"#).contains("not to the sub-attribute"));
        assert!(invalid_path(r#""name""#).contains("expected an attribute name"));
        assert!(invalid_path(&"a".repeat(MAX_FILTER_BYTES + 1)).contains("4096"));
        assert!(invalid_path(r#"emails[type eq]"#).contains("comparison value"));
    }

    // ---- evaluation -----------------------------------------------------

    #[test]
    fn username_is_case_insensitive_and_ids_are_exact() {
        let user = okta_user();
        assert!(user_matches(r#"userName eq "BJENSEN@example.com""#, &user));
        assert!(user_matches(r#"USERNAME Eq "bjensen@EXAMPLE.com""#, &user));
        assert!(!user_matches(r#"userName eq "bjensen""#, &user));
        assert!(user_matches(
            r#"externalId eq "00ujl29u0le5T6Aj10h7""#,
            &user
        ));
        assert!(!user_matches(
            r#"externalId eq "00UJL29U0LE5T6AJ10H7""#,
            &user
        ));
        assert!(user_matches(
            r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
            &user
        ));
        assert!(!user_matches(
            r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
            &user
        ));
        assert!(user_matches(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#,
            &user
        ));
        let entra = entra_user();
        assert!(user_matches(
            r#"userName eq "ryan.leenay@contoso.onmicrosoft.com""#,
            &entra
        ));
    }

    #[test]
    fn string_operators() {
        let user = okta_user();
        assert!(user_matches(r#"displayName co "JENS""#, &user));
        assert!(user_matches(r#"displayName sw "babs""#, &user));
        assert!(user_matches(r#"displayName ew "Jensen""#, &user));
        assert!(!user_matches(r#"displayName sw "Jensen""#, &user));
        assert!(user_matches(r#"displayName ne "Barbara""#, &user));
        assert!(!user_matches(r#"displayName ne "babs jensen""#, &user));
        assert!(user_matches(r#"externalId sw "00ujl""#, &user));
        assert!(!user_matches(r#"externalId sw "00UJL""#, &user));
        assert!(user_matches(r#"title gt "Tour""#, &user));
        assert!(user_matches(r#"title ge "tour guide""#, &user));
        assert!(user_matches(r#"title le "TOUR GUIDE""#, &user));
        assert!(user_matches(r#"title lt "Z""#, &user));
        assert!(!user_matches(r#"title lt "A""#, &user));
        assert!(user_matches(r#"name.givenName eq "barbara""#, &user));
        assert!(user_matches(r#"Name.GivenName sw "BAR""#, &user));
        assert!(!user_matches(r#"displayName co 5"#, &user));
    }

    #[test]
    fn unicode_case_folding() {
        let user = json!({"displayName": "ÉLODIE Ørsted"});
        assert!(user_matches(r#"displayName eq "élodie ørsted""#, &user));
        assert!(user_matches(r#"displayName co "\u00f8RS""#, &user));
    }

    #[test]
    fn multi_valued_attributes_match_any_element() {
        let user = okta_user();
        assert!(user_matches(r#"emails.value eq "babs@jensen.org""#, &user));
        assert!(user_matches(r#"emails.value eq "BABS@jensen.org""#, &user));
        assert!(user_matches(r#"emails co "@corp""#, &user));
        assert!(user_matches(r#"emails eq "babs@jensen.org""#, &user));
        assert!(!user_matches(r#"emails eq "home""#, &user));
        assert!(user_matches(r#"emails.type eq "home""#, &user));
        assert!(user_matches(r#"emails.primary eq true"#, &user));
        assert!(user_matches(
            r#"groups.value eq "e9e30dba-f08f-4109-8486-d5c6a331660a""#,
            &user
        ));
        assert!(user_matches(
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            &user
        ));
        // ne holds only when no element is equal.
        assert!(!user_matches(r#"emails.type ne "home""#, &user));
        assert!(user_matches(r#"emails.type ne "other""#, &user));
    }

    #[test]
    fn value_paths_match_within_one_element() {
        let user = okta_user();
        assert!(user_matches(
            r#"emails[type eq "work" and value co "@corp"]"#,
            &user
        ));
        assert!(!user_matches(
            r#"emails[type eq "home" and value co "@corp"]"#,
            &user
        ));
        assert!(user_matches(
            r#"emails[type eq "home" or value co "@nowhere"]"#,
            &user
        ));
        assert!(user_matches(
            r#"emails[TYPE EQ "WORK" and primary eq true]"#,
            &user
        ));
        assert!(user_matches(r#"emails[not (type eq "work")]"#, &user));
        assert!(user_matches(r#"emails[primary pr]"#, &user));
        assert!(!user_matches(r#"phoneNumbers[type eq "work"]"#, &user));
        assert!(user_matches(
            r#"addresses[type eq "work" and streetAddress sw "100"]"#,
            &user
        ));
        assert!(user_matches(r#"name[givenName eq "BARBARA"]"#, &user));
        assert!(!user_matches(r#"title[value pr]"#, &user));
        assert!(!user_matches(r#"emails[nonsense eq "x"]"#, &user));
        assert!(user_matches(
            r#"userName sw "bj" and emails[type eq "work"]"#,
            &user
        ));
    }

    #[test]
    fn enterprise_extension_attributes() {
        let user = okta_user();
        let urn = ENTERPRISE;
        assert!(user_matches(
            &format!(r#"{urn}:employeeNumber eq "701984""#),
            &user
        ));
        assert!(user_matches(
            &format!(r#"{urn}:department co "operations""#),
            &user
        ));
        assert!(user_matches(
            &format!(r#"{urn}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &user
        ));
        assert!(user_matches(
            &format!(r#"{urn}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
            &user
        ));
        assert!(user_matches(&format!("{urn}:manager pr"), &user));
        assert!(user_matches(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984""#,
            &user
        ));
        assert!(!user_matches(
            &format!("{urn}:employeeNumber pr"),
            &entra_user()
        ));
    }

    #[test]
    fn date_times_compare_chronologically() {
        let user = okta_user();
        assert!(user_matches(
            r#"meta.lastModified gt "2011-05-13T04:42:33Z""#,
            &user
        ));
        assert!(!user_matches(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            &user
        ));
        assert!(user_matches(
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            &user
        ));
        assert!(user_matches(
            r#"meta.lastModified eq "2011-05-13T06:42:34.000+02:00""#,
            &user
        ));
        assert!(user_matches(
            r#"meta.created lt "2011-01-01T00:00:00Z""#,
            &user
        ));
        assert!(user_matches(
            r#"meta.created le "2010-01-23T04:56:22Z""#,
            &user
        ));
        let entra = entra_user();
        // created is 09:00:00.123Z written with an offset: equal instants.
        assert!(user_matches(
            r#"meta.created eq "2024-02-01T09:00:00.123Z""#,
            &entra
        ));
        assert!(user_matches(
            r#"meta.created ge "2024-02-01T09:00:00.123Z""#,
            &entra
        ));
        assert!(!user_matches(
            r#"meta.created gt "2024-02-01T09:00:00.123Z""#,
            &entra
        ));
        assert!(user_matches(r#"meta.lastModified sw "2024-02""#, &entra));
        let error = matches(
            &parse(r#"meta.lastModified gt "yesterday""#),
            &user,
            ResourceKind::User,
        );
        assert!(matches!(error, Err(FilterError::Invalid(m)) if m.contains("RFC 3339")));
    }

    #[test]
    fn meta_timestamps_are_date_times_even_without_schema() {
        // Whether or not the schema describes `meta`, its timestamps are
        // dateTimes.
        let group = json!({"meta": {"created": "2020-01-01T00:00:00+01:00"}});
        let target = Target::in_resource(
            &group,
            &sub("meta", "created"),
            ResourceKind::Group,
            Purpose::Comparison,
        );
        assert_eq!(target.rules.ty, Some(AttrType::DateTime));
        assert!(is_meta_timestamp(&sub("META", "LASTMODIFIED")));
        assert!(!is_meta_timestamp(&sub("meta", "version")));
    }

    #[test]
    fn booleans() {
        let user = okta_user();
        let entra = entra_user();
        assert!(user_matches("active eq true", &user));
        assert!(!user_matches("active eq false", &user));
        assert!(user_matches("active eq false", &entra));
        assert!(user_matches("active ne true", &entra));
        assert!(user_matches(r#"active eq "False""#, &entra));
        assert!(!user_matches("active co true", &entra));
        assert!(!user_matches("active eq 1", &entra));
        let gt = matches(&parse(r#"active gt "a""#), &user, ResourceKind::User);
        assert_eq!(
            gt,
            Err(FilterError::Invalid(
                r#"invalid filter: "gt" cannot be used on the boolean attribute "active""#.into()
            ))
        );
        // The type decides, not the data: missing attribute, same error.
        let gt = matches(&parse(r#"active gt "a""#), &json!({}), ResourceKind::User);
        assert!(gt.is_err());
        let gt = matches(&parse(r#"name gt "a""#), &user, ResourceKind::User);
        assert!(matches!(gt, Err(FilterError::Invalid(m)) if m.contains("complex")));
    }

    #[test]
    fn missing_attributes_and_null() {
        let user = entra_user();
        assert!(!user_matches(r#"title eq "x""#, &user));
        assert!(user_matches(r#"title ne "x""#, &user));
        assert!(user_matches("title eq null", &user));
        assert!(!user_matches("title ne null", &user));
        assert!(!user_matches("userName eq null", &user));
        assert!(user_matches("userName ne null", &user));
        assert!(!user_matches(r#"name.givenName sw "R""#, &user));
        assert!(!user_matches(r#"title gt "a""#, &user));
        assert!(!user_matches(r#"phoneNumbers[type eq "work"]"#, &user));
        assert!(user_matches("title eq null", &json!({"title": null})));
    }

    #[test]
    fn presence() {
        let user = okta_user();
        let entra = entra_user();
        assert!(user_matches("title pr", &user));
        assert!(!user_matches("title pr", &entra));
        assert!(
            !user_matches("displayName pr", &entra),
            "empty string is not present"
        );
        assert!(
            !user_matches("phoneNumbers pr", &user),
            "empty array is not present"
        );
        assert!(user_matches("emails pr", &user));
        assert!(user_matches("emails.value pr", &user));
        assert!(!user_matches("emails.display pr", &user));
        assert!(user_matches("name pr", &user));
        assert!(user_matches("name.familyName pr", &user));
        assert!(!user_matches("name pr", &json!({"name": {}})));
        assert!(!user_matches(
            "name pr",
            &json!({"name": {"givenName": ""}})
        ));
        assert!(!user_matches("emails pr", &json!({"emails": [{}]})));
        assert!(user_matches("active pr", &entra), "false is a value");
        assert!(user_matches("not (title pr)", &entra));
    }

    #[test]
    fn logical_operators() {
        let user = okta_user();
        assert!(user_matches(
            r#"userName sw "bj" and active eq true"#,
            &user
        ));
        assert!(!user_matches(
            r#"userName sw "bj" and active eq false"#,
            &user
        ));
        assert!(user_matches(r#"userName sw "zz" or active eq true"#, &user));
        assert!(user_matches(r#"not (userName sw "zz")"#, &user));
        assert!(user_matches(
            r#"title pr and (emails co "example.com" or emails.value co "example.org")"#,
            &user
        ));
        assert!(!user_matches(
            r#"title pr and not (emails co "example.com" or emails.value co "example.org")"#,
            &user
        ));
        // Short-circuit: the right-hand side would be an error.
        assert!(!user_matches(
            r#"userName eq "nobody" and active gt "x""#,
            &user
        ));
        assert!(user_matches(r#"userName pr or active gt "x""#, &user));
    }

    #[test]
    fn unknown_attributes_compare_by_json_type() {
        let resource = json!({
            "favouriteColour": "Teal",
            "score": 7,
            "ratio": 0.5,
            "flag": true,
            "tags": ["Alpha", "beta"],
            "pets": [{"value": "Rex", "type": "dog"}]
        });
        assert!(user_matches(r#"FAVOURITECOLOUR eq "teal""#, &resource));
        assert!(user_matches(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:favouriteColour sw "T""#,
            &resource
        ));
        assert!(user_matches("score eq 7", &resource));
        assert!(user_matches("score gt 6.5", &resource));
        assert!(user_matches("score le 7", &resource));
        assert!(!user_matches(r#"score eq "7""#, &resource));
        assert!(user_matches("ratio lt 1", &resource));
        assert!(user_matches("flag eq true", &resource));
        assert!(!user_matches(r#"flag gt "a""#, &resource));
        assert!(user_matches(r#"tags eq "ALPHA""#, &resource));
        assert!(user_matches(r#"pets eq "REX""#, &resource));
        assert!(user_matches(r#"pets[type eq "DOG"]"#, &resource));
        assert!(user_matches(r#"pets.type sw "d""#, &resource));
        assert!(!user_matches(r#"nope eq "x""#, &resource));
        assert!(!user_matches(
            r#"urn:x:y:favouriteColour eq "teal""#,
            &resource
        ));
        let extension = json!({"urn:x:y": {"favouriteColour": "Teal"}});
        assert!(user_matches(
            r#"urn:x:y:favouriteColour eq "teal""#,
            &extension
        ));
        assert!(!user_matches(r#"favouriteColour eq "teal""#, &extension));
    }

    #[test]
    fn groups_and_members() {
        let group = group();
        assert!(group_matches(r#"displayName eq "tour guides""#, &group));
        // Entra ID checks membership with `members eq "<id>"`.
        assert!(group_matches(
            r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members eq "902c246b-6245-4190-8e05-00816be7344a""#,
            &group
        ));
        assert!(group_matches(
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            &group
        ));
        assert!(group_matches(r#"members.display co "mandy""#, &group));
        assert!(!group_matches(
            r#"members[value eq "2819c223" and display eq "Mandy Pepperidge"]"#,
            &group
        ));
        assert!(!group_matches(r#"members eq "nobody""#, &group));
        assert!(!group_matches("members pr", &json!({"members": []})));
    }

    #[test]
    fn value_path_in_element_scope_is_an_error_not_a_panic() {
        let nested = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(Filter::ValuePath {
                path: path("x"),
                filter: Box::new(Filter::Present(path("y"))),
            }),
        };
        let result = matches(&nested, &okta_user(), ResourceKind::User);
        assert!(matches!(result, Err(FilterError::Invalid(_))));
    }
}
