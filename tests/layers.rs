//! The dependency direction of `src/`: domain ← protocol ← store ← use
//! cases ← faces. Every `crate::…` path in a file must name a module of
//! its own layer or a lower one; a new path that points upwards fails
//! here, naming the file and the path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers, lowest first.
const DOMAIN: u8 = 0;
const PROTOCOL: u8 = 1;
const STORE: u8 = 2;
const USE_CASES: u8 = 3;
const FACES: u8 = 4;

fn layer_name(layer: u8) -> &'static str {
    ["domain", "protocol", "store", "use cases", "faces"][usize::from(layer)]
}

/// The layer of a file under `src/`, by its path.
fn layer_of_file(path: &str) -> u8 {
    match path {
        p if p.starts_with("domain/") => DOMAIN,
        // Settings and the secret primitives are plain data and pure
        // functions, used from the store up.
        p if p.starts_with("protocol/") => PROTOCOL,
        "config.rs" | "auth/token.rs" | "auth/password.rs" => PROTOCOL,
        "auth/totp.rs" | "auth/mfa_key.rs" => PROTOCOL,
        p if p.starts_with("store/") => STORE,
        // The counters: no I/O, but a side effect on the process's
        // recorder, which the pure layers below must not have; recorded
        // from the store (transactions) up.
        "measure.rs" => STORE,
        p if p.starts_with("app/") || p.starts_with("mail/") => USE_CASES,
        // AppState is the use cases' environment (store, settings, clock,
        // the argon2 permits, the sign-in throttle), not a face.
        "auth/mod.rs" | "error.rs" | "state.rs" => USE_CASES,
        _ => FACES,
    }
}

/// The layer of the module a `crate::a::b` path names; `None` for what is
/// not a module (exported macros).
fn layer_of_path(first: &str, second: Option<&str>) -> Option<u8> {
    Some(match (first, second) {
        ("domain", _) => DOMAIN,
        ("protocol", _) | ("config", _) => PROTOCOL,
        ("auth", Some("token" | "password" | "totp" | "mfa_key")) => PROTOCOL,
        ("store" | "measure", _) => STORE,
        ("app" | "mail" | "auth" | "error" | "state", _) => USE_CASES,
        ("api" | "scim" | "http" | "jobs" | "invite_page" | "console" | "bootstrap", _) => FACES,
        ("client_ip" | "security_headers", _) => FACES,
        ("telemetry" | "metrics_export", _) => FACES,
        _ => return None,
    })
}

/// Paths that point upwards today, each with the reason it is tolerated.
/// Remove an entry when the code moves; do not add one without a reason.
const KNOWN: &[(&str, &str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments, so prose naming a module does
/// not count.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Every `crate::a` or `crate::a::b` a file names, grouped imports
/// (`use crate::{a, b::c}`) included.
fn crate_paths(code: &str) -> BTreeSet<(String, Option<String>)> {
    let mut paths = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        let first = ident_at(&group[i..]);
                        let after = &group[i + first.len()..];
                        let second = after.strip_prefix("::").map(ident_at);
                        paths.insert((first.to_owned(), second.map(str::to_owned)));
                    }
                    _ => {}
                }
            }
        } else {
            let first = ident_at(rest);
            let second = rest[first.len()..].strip_prefix("::").map(ident_at);
            paths.insert((first.to_owned(), second.map(str::to_owned)));
        }
    }
    paths
}

#[test]
fn no_module_reaches_up_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found the sources");
    let mut violations = Vec::new();
    let mut used_exceptions = BTreeSet::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let own = layer_of_file(&relative);
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (first, second) in crate_paths(&code_of(&text)) {
            let Some(layer) = layer_of_path(&first, second.as_deref()) else {
                continue;
            };
            if layer <= own {
                continue;
            }
            let named = match &second {
                Some(second) => format!("{first}::{second}"),
                None => first.clone(),
            };
            if let Some(known) = KNOWN
                .iter()
                .find(|(f, p, _)| *f == relative && named.starts_with(p))
            {
                used_exceptions.insert(known.1);
                continue;
            }
            violations.push(format!(
                "src/{relative} ({}) uses crate::{named} ({})",
                layer_name(own),
                layer_name(layer)
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies must point down (domain ← protocol ← store ← use cases ← faces):\n{}",
        violations.join("\n")
    );
    let stale: Vec<_> = KNOWN
        .iter()
        .filter(|(_, path, _)| !used_exceptions.contains(path))
        .collect();
    assert!(
        stale.is_empty(),
        "remove these exceptions, the code no longer needs them: {stale:?}"
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let paths = crate_paths(
        "use crate::{api::me, store::{self, x}, domain};\nlet a = crate::scim::users::f();",
    );
    let names: Vec<String> = paths
        .iter()
        .map(|(a, b)| format!("{a}/{}", b.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(names, ["api/me", "domain/", "scim/users", "store/"]);
}
