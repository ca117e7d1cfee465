//! A real SMTP server for tests: aiosmtpd from the dev virtualenv
//! (`dev/mongo ensure-venv` installs it), storing what it receives in a
//! Maildir, and Python's own `email` parser to read messages back, so a
//! MIME mistake on our side cannot cancel out in a parser of ours.
//!
//! The interpreter is `<repo>/.dev/venv/bin/python`, or `TEST_PYTHON`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn python() -> PathBuf {
    let (python, origin) = match std::env::var_os("TEST_PYTHON") {
        Some(path) => (PathBuf::from(path), "TEST_PYTHON"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".dev/venv/bin/python"),
            "the dev virtualenv",
        ),
    };
    assert!(
        python.exists(),
        "no Python at {} ({origin}): run `dev/mongo ensure-venv` to create .dev/venv \
         with aiosmtpd, or point TEST_PYTHON at a Python that has it",
        python.display()
    );
    let has_aiosmtpd = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_aiosmtpd,
        "{} cannot import aiosmtpd: run `dev/mongo ensure-venv` to update .dev/venv",
        python.display()
    );
    python
}

/// A port nothing listens on right now.
fn free_port_v4() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// An aiosmtpd process, killed when dropped (a failed assertion included).
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts one; `extra` goes before the handler options (e.g. `-s`).
    pub fn start(extra: &[&str]) -> SmtpServer {
        Self::start_on(None, extra)
    }

    /// Starts one on `port` (a free one when `None`).
    pub fn start_on(fixed_port: Option<u16>, extra: &[&str]) -> SmtpServer {
        let python = python();
        let mut last_log = String::new();
        // The port is free when picked but may be taken before aiosmtpd
        // binds it: a server that exits at once is tried on another one.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let maildir = dir.path().join("Maildir");
            let log = dir.path().join("aiosmtpd.log");
            let port = fixed_port.unwrap_or_else(free_port_v4);
            let log_file = std::fs::File::create(&log).expect("log file");
            let child = Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(extra)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log file"))
                .stderr(log_file)
                .spawn()
                .expect("start aiosmtpd");
            let mut server = SmtpServer {
                child,
                port,
                maildir,
                log,
                _dir: dir,
            };
            if server.wait_until_ready(Duration::from_secs(30)) {
                return server;
            }
            last_log = server.log_text();
        }
        panic!("aiosmtpd did not start; its last log:\n{last_log}");
    }

    /// Polls until the server greets with 220; false if it exited.
    pub fn wait_until_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut greeting = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut greeting).is_ok() && greeting.starts_with("220") {
                    let _ = (&stream).write_all(b"QUIT\r\n");
                    return true;
                }
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not accept connections on port {} within {limit:?}; its log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The messages delivered so far (aiosmtpd files them under `new/`).
    pub fn messages(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                found.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        }
        found.sort();
        found
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a message with Python's `email` package (the modern policy,
/// which decodes encoded words and transfer encodings).
const PARSE_MESSAGE: &str = r#"
import email, email.policy, json, sys
with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
parts = []
if msg.is_multipart():
    for part in msg.iter_parts():
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "content": part.get_content(),
        })
print(json.dumps({
    "defects": [str(d) for d in msg.defects],
    "content_type": msg.get_content_type(),
    "headers": {k.lower(): str(v) for k, v in msg.items()},
    "parts": parts,
}))
"#;

pub fn parse_message(path: &Path) -> Value {
    let output = Command::new(python())
        .args(["-c", PARSE_MESSAGE])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python could not parse {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json from python")
}

/// The link's secret, from a mail's text part (the HTML part must carry
/// the same link).
pub fn invitation_token(mail: &Value) -> String {
    let parts = mail["parts"].as_array().expect("a multipart mail");
    let text = parts
        .iter()
        .find(|p| p["content_type"] == "text/plain")
        .and_then(|p| p["content"].as_str())
        .expect("a text part");
    let html = parts
        .iter()
        .find(|p| p["content_type"] == "text/html")
        .and_then(|p| p["content"].as_str())
        .expect("an HTML part");
    let start = text.find("/invite/mst_inv_").expect("a link in the text") + "/invite/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_eq!(token.len(), "mst_inv_".len() + 64, "{token}");
    assert!(html.contains(&token), "the HTML part carries the same link");
    token
}

/// An SMTP server that takes a message and never answers its final dot:
/// whoever sends to it waits there, mid-send, until killed or timed out.
/// Nothing it swallows counts as delivered; each message is kept as a
/// file, for `parse_message`, once the sender has written all of it.
pub struct SmtpTarpit {
    pub port: u16,
    spool: tempfile::TempDir,
}

impl SmtpTarpit {
    pub fn start() -> SmtpTarpit {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let spool = tempfile::tempdir().expect("tempdir");
        let dir = spool.path().to_path_buf();
        // Lives as long as the test process: a sender's connection ends
        // when the sender dies.
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if let Ok(stream) = stream {
                    let path = dir.join(format!("{n}.eml"));
                    std::thread::spawn(move || swallow(stream, &path));
                }
            }
        });
        SmtpTarpit { port, spool }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages held so far, each written in full.
    pub fn held(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.spool.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }
}

/// Speaks SMTP up to the end of one message, keeps it at `path`, then
/// stays silent until the peer hangs up.
fn swallow(stream: TcpStream, path: &Path) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    if writer.write_all(b"220 tarpit ESMTP\r\n").is_err() {
        return;
    }
    let mut message: Option<Vec<u8>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(body) = message.as_mut() {
            if line == b".\r\n" {
                let partial = path.with_extension("part");
                if std::fs::write(&partial, &body).is_ok() {
                    let _ = std::fs::rename(&partial, path);
                }
                let mut rest = Vec::new();
                let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
                return;
            }
            // SMTP's dot-stuffing: a leading dot was doubled by the sender.
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            body.extend_from_slice(unstuffed);
            continue;
        }
        let verb = String::from_utf8_lossy(line.get(..4).unwrap_or_default()).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-tarpit\r\n250 8BITMIME\r\n",
            "DATA" => {
                message = Some(Vec::new());
                b"354 go on\r\n"
            }
            "QUIT" => {
                let _ = writer.write_all(b"221 bye\r\n");
                return;
            }
            _ => b"250 ok\r\n",
        };
        if writer.write_all(reply).is_err() {
            return;
        }
    }
}
