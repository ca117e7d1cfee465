//! The files users build and run Muster with: what `docker/compose.yaml`
//! and `docker/Dockerfile` refer to must exist (no Docker engine runs
//! here, so this is what can be checked).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_build_context_and_file_compose_names_exists() {
    let compose_dir = root().join("docker");
    let text = std::fs::read_to_string(compose_dir.join("compose.yaml")).expect("compose.yaml");
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("compose.yaml is YAML");
    let services = compose["services"].as_mapping().expect("services");
    let mut built = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap_or("?");
        if let Some(build) = service.get("build") {
            let context = compose_dir.join(build["context"].as_str().unwrap_or("."));
            assert!(
                context.is_dir(),
                "{name}: build context {} missing",
                context.display()
            );
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(
                dockerfile.is_file(),
                "{name}: {} missing",
                dockerfile.display()
            );
            dockerfile_copies_exist(&dockerfile, &context);
            built += 1;
        }
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            // Bind mounts name a path; named volumes do not.
            let source = volume
                .as_str()
                .and_then(|v| v.split(':').next())
                .unwrap_or("");
            if source.starts_with('.') || source.starts_with('/') {
                let path = compose_dir.join(source);
                assert!(path.exists(), "{name}: mounted {} missing", path.display());
            }
        }
        if let Some(depends) = service["depends_on"].as_mapping() {
            for (other, _) in depends {
                assert!(
                    services.contains_key(other),
                    "{name} depends on a service compose does not define: {other:?}"
                );
            }
        }
    }
    assert!(built > 0, "compose builds the image");
}

/// `COPY` sources of the build stage (not `--from`) exist in the context.
fn dockerfile_copies_exist(dockerfile: &Path, context: &Path) {
    let text = std::fs::read_to_string(dockerfile).expect("Dockerfile");
    for line in text.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        let Some((_, sources)) = parts.split_last() else {
            continue;
        };
        for source in sources {
            let path = context.join(source);
            assert!(
                path.exists(),
                "{}: COPY {source} missing from the context",
                dockerfile.display()
            );
        }
    }
}

#[test]
fn the_image_checks_its_health_with_the_binary() {
    let text = std::fs::read_to_string(root().join("docker/Dockerfile")).expect("Dockerfile");
    assert!(
        text.contains("HEALTHCHECK") && text.contains(r#"CMD ["muster", "health"]"#),
        "the image runs `muster health` as its HEALTHCHECK"
    );
}
