//! The key TOTP secrets are sealed with at rest (`auth.mfa_key`). Unlike
//! passwords and tokens, a TOTP secret cannot be stored as a hash: the
//! server needs it to compute codes. Sealed with ChaCha20-Poly1305 under a
//! key the database never holds, a dump of the database does not give an
//! attacker anyone's second factor.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;

use super::totp::TotpSecret;
use crate::domain::AccountId;

/// The version tag of sealed secrets: a later key scheme gets another.
const SEALED_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

/// 32 bytes, given base64-encoded (`openssl rand -base64 32`).
#[derive(Clone)]
pub struct MfaKey(Key);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MfaKeyError {
    #[error("must be 32 bytes in base64 (generate one with `openssl rand -base64 32`)")]
    Malformed,
    /// The stored secret was sealed with another key, or altered, or
    /// moved to another account.
    #[error("a stored TOTP secret does not open with auth.mfa_key")]
    DoesNotOpen,
}

impl MfaKey {
    pub fn parse(encoded: &str) -> Result<MfaKey, MfaKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| MfaKeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(MfaKeyError::Malformed);
        }
        Ok(MfaKey(*Key::from_slice(&bytes)))
    }

    /// `secret` sealed for `account`: the account id is authenticated
    /// with it, so a sealed secret copied onto another account does not
    /// open there.
    pub fn seal(&self, account: &AccountId, secret: &TotpSecret) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: account.as_str().as_bytes(),
        };
        // Encryption with a valid key and nonce size does not fail; an
        // empty seal would only fail to open later, never leak.
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(bytes))
    }

    pub fn open(&self, account: &AccountId, sealed: &str) -> Result<TotpSecret, MfaKeyError> {
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(MfaKeyError::DoesNotOpen)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| MfaKeyError::DoesNotOpen)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(MfaKeyError::DoesNotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: account.as_str().as_bytes(),
        };
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(TotpSecret::from_bytes)
            .map_err(|_| MfaKeyError::DoesNotOpen)
    }
}

impl fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_account() {
        let key = MfaKey::parse(KEY).expect("a valid key");
        let grace = AccountId::new();
        let secret = TotpSecret::generate();
        let sealed = key.seal(&grace, &secret);
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(!sealed.contains(&secret.to_base32()));
        assert_eq!(key.open(&grace, &sealed), Ok(secret.clone()));
        // Sealing twice gives two seals (fresh nonces).
        assert_ne!(key.seal(&grace, &secret), sealed);

        let other_account = AccountId::new();
        assert_eq!(
            key.open(&other_account, &sealed),
            Err(MfaKeyError::DoesNotOpen)
        );
        let other_key =
            MfaKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("a valid key");
        assert_eq!(
            other_key.open(&grace, &sealed),
            Err(MfaKeyError::DoesNotOpen)
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(key.open(&grace, &tampered), Err(MfaKeyError::DoesNotOpen));
        assert_eq!(key.open(&grace, "v1:"), Err(MfaKeyError::DoesNotOpen));
        assert_eq!(key.open(&grace, "plain"), Err(MfaKeyError::DoesNotOpen));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(MfaKey::parse(KEY).is_ok());
        assert_eq!(
            MfaKey::parse("c2hvcnQ=").err(),
            Some(MfaKeyError::Malformed)
        );
        assert_eq!(
            MfaKey::parse("not base64!").err(),
            Some(MfaKeyError::Malformed)
        );
        let key = MfaKey::parse(KEY).expect("valid");
        assert_eq!(format!("{key:?}"), "MfaKey(<redacted>)");
    }
}
