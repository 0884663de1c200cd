//! Sealed page-token positions. A list page that ends on its budget of
//! records examined resumes after the last record it examined, which the
//! caller may not be allowed to see (a restricted record, for a caller
//! without clearance): written in the token as it is, its id would reach
//! that caller. Such a position is sealed instead (ChaCha20-Poly1305 under a
//! key this process makes when it starts, bound to the request's
//! fingerprint): the caller can hand it back but not read it. A sealed
//! token outlives neither a restart nor a change of filter: either is
//! INVALID_ARGUMENT, start the list again.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use cetrack_contract::error::{Error, FieldViolation};

/// Seals and opens positions with this process's key.
pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer with a new random key.
    pub fn new() -> Result<Self, Error> {
        let random = SystemRandom::new();
        let mut bytes = [0u8; 32];
        random
            .fill(&mut bytes)
            .map_err(|_| Error::Storage("no randomness for the page-token key".into()))?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| Error::Storage("the page-token key is not a key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random,
        })
    }

    /// `id` sealed for the request with `fingerprint`: nonce, then the
    /// ciphertext and its tag.
    pub fn seal(&self, id: &str, fingerprint: u64) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| Error::Storage("no randomness for a page token".into()))?;
        let mut sealed = id.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(fingerprint.to_be_bytes()),
                &mut sealed,
            )
            .map_err(|_| Error::Storage("a page token could not be sealed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The id sealed in `sealed` for the request with `fingerprint`.
    pub fn open(&self, sealed: &[u8], fingerprint: u64) -> Result<String, Error> {
        let expired = || {
            Error::InvalidArgument(vec![FieldViolation::new(
                "page_token",
                "the page token has expired (the service restarted since it was made): start the list again",
            )])
        };
        if sealed.len() < NONCE_LEN {
            return Err(expired());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| expired())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(fingerprint.to_be_bytes()), &mut body)
            .map_err(|_| expired())?;
        String::from_utf8(plain.to_vec()).map_err(|_| expired())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_position_opens_only_with_its_key_and_request() {
        let sealer = Sealer::new().unwrap();
        let sealed = sealer.seal("secret-id", 7).unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "the id is not readable"
        );
        assert_eq!(sealer.open(&sealed, 7).unwrap(), "secret-id");
        // Sealed twice, it differs (a fresh nonce each time).
        assert_ne!(sealer.seal("secret-id", 7).unwrap(), sealed);
        // Another request, another process's key, a flipped bit, a stub.
        assert!(sealer.open(&sealed, 8).is_err());
        assert!(Sealer::new().unwrap().open(&sealed, 7).is_err());
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN + 1] ^= 1;
        let err = sealer.open(&flipped, 7).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(sealer.open(&sealed[..4], 7).is_err());
    }
}
