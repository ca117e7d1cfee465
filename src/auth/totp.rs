//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): the
//! secret an authenticator app holds, the codes it shows, and the
//! recovery codes that stand in for it once each.

use std::fmt;

use chrono::{DateTime, Utc};
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Seconds per code: what every authenticator app assumes.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code: likewise.
const DIGITS: u32 = 6;
/// Steps either side of now that still count, for clocks that drift and
/// people who type slowly (RFC 6238 §5.2 recommends one).
const SKEW_STEPS: u64 = 1;
/// 160 bits, the size RFC 4226 §4 recommends for HMAC-SHA1.
const SECRET_BYTES: usize = 20;

/// The shared secret of an authenticator app. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// A secret as an app shows it (base32, any case, spaces ignored).
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        BASE32_NOPAD.decode(cleaned.as_bytes()).ok().map(TotpSecret)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding, as people type it into an app.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// The `otpauth://` URI authenticator apps read from the QR code
    /// (Google Authenticator's key URI format, which every app follows).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{issuer}:{account}");
        format!(
            "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(&label),
            self.to_base32(),
            percent_encode(issuer),
        )
    }

    /// The code for time step `step`.
    pub fn code_at(&self, step: u64) -> String {
        hotp(&self.0, step, DIGITS)
    }

    /// The step of the code `code` is, if it is one of the steps around
    /// `now` and later than `after` (the last step accepted: a code is
    /// good once, and never after a later one).
    pub fn matching_step(&self, code: &str, now: DateTime<Utc>, after: Option<u64>) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_of(now);
        let mut found = None;
        // Every candidate is computed and compared, so the time taken does
        // not tell which one matched.
        for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
            let matches: bool = self.code_at(step).as_bytes().ct_eq(code.as_bytes()).into();
            if matches && after.is_none_or(|after| step > after) {
                found = Some(step);
            }
        }
        found
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The time step of `now`: whole periods since the Unix epoch.
pub fn step_of(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp().div_euclid(STEP_SECONDS)).unwrap_or(0)
}

/// RFC 4226 §5.3: HMAC-SHA1 of the counter, dynamically truncated.
fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code, without its dashes: 12 of 32 letters
/// and digits, 60 bits, against at most a handful of guesses before the
/// account's lock.
const RECOVERY_CODE_CHARS: usize = 12;
/// Lower-case letters and digits without 0, 1, l and o, which people
/// confuse on paper.
const RECOVERY_ALPHABET: &[u8; 32] = b"23456789abcdefghijkmnpqrstuvwxyz";

/// A fresh recovery code, grouped by four for reading: `abcd-efgh-jkmn`.
pub fn generate_recovery_code() -> String {
    let mut bytes = [0u8; RECOVERY_CODE_CHARS];
    OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What is stored of a recovery code: the SHA-256 of its characters,
/// however it was typed (case, dashes, spaces). A fast hash is enough for
/// 60 random bits behind a lock.
pub fn recovery_code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the seed "12345678901234567890",
    /// eight digits.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_of(Utc.timestamp_opt(time, 0).single().expect("time"));
            assert_eq!(hotp(seed, step, 8), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbouring_ones_once() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = Utc.timestamp_opt(1_111_111_111, 0).single().expect("time");
        let step = step_of(now);
        let code = secret.code_at(step);
        assert_eq!(secret.matching_step(&code, now, None), Some(step));
        // Typed with a space in the middle, as apps show it.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(secret.matching_step(&spaced, now, None), Some(step));
        // The previous and the next period still count...
        let previous = secret.code_at(step - 1);
        assert_eq!(secret.matching_step(&previous, now, None), Some(step - 1));
        let next = secret.code_at(step + 1);
        assert_eq!(secret.matching_step(&next, now, None), Some(step + 1));
        // ...two away do not.
        let old = secret.code_at(step - 2);
        assert_eq!(secret.matching_step(&old, now, None), None);
        // Once a step is used, it and every earlier one are refused.
        assert_eq!(secret.matching_step(&code, now, Some(step)), None);
        assert_eq!(secret.matching_step(&previous, now, Some(step)), None);
        assert_eq!(secret.matching_step(&next, now, Some(step)), Some(step + 1));
        for junk in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"] {
            assert_eq!(secret.matching_step(junk, now, None), None, "{junk:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_and_account() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"),
            Some(secret.clone())
        );
        assert_eq!(
            secret.otpauth_uri("Muster", "grace@example.com"),
            "otpauth://totp/Muster%3Agrace%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Muster&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn recovery_codes_are_readable_and_hash_however_typed() {
        let code = generate_recovery_code();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(code.matches('-').count(), 2, "{code}");
        assert!(
            code.chars()
                .all(|c| c == '-' || RECOVERY_ALPHABET.contains(&(c as u8)))
        );
        let typed = code.to_uppercase().replace('-', " ");
        assert_eq!(recovery_code_hash(&typed), recovery_code_hash(&code));
        assert_ne!(
            recovery_code_hash(&generate_recovery_code()),
            recovery_code_hash(&code)
        );
    }
}
