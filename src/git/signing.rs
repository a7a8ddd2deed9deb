//! Proof that a commit is promoter's. Every commit promoter makes carries an SSH signature in
//! git's `gpgsig` header (namespace `git`, SHA-512, the armored `-----BEGIN SSH SIGNATURE-----`
//! block that `git commit -S` writes with `gpg.format ssh`, so `git verify-commit` and GitLab
//! check it too). A commit counts as promoter's only when that signature verifies against
//! promoter's own key or one of the public keys it is told to trust (the previous key during
//! a rotation). Author and committer are text anyone can write; they prove nothing.
//!
//! Owns: loading the key files, signing a commit buffer, verifying a commit of a repository.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSH signature namespace git uses for commits.
pub const NAMESPACE: &str = "git";

/// The command that writes a key promoter can use, for error messages.
pub const KEYGEN_HINT: &str = "ssh-keygen -t ed25519 -N '' -C promoter -f <file>";

/// A key file that cannot be used. The key's bytes are never in the message.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read or is not an OpenSSH private key.
    #[error(
        "{key}: cannot read an OpenSSH private key from {}: {detail}; write one with `{KEYGEN_HINT}`",
        path.display()
    )]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// The key is protected by a passphrase promoter cannot type.
    #[error(
        "{key}: the key in {} is encrypted; promoter needs it without a passphrase (`{KEYGEN_HINT}`)",
        path.display()
    )]
    Encrypted { key: &'static str, path: PathBuf },
    /// Not an ed25519 key.
    #[error(
        "{key}: the key in {} is {algorithm}; promoter signs with ed25519 keys (`{KEYGEN_HINT}`)",
        path.display()
    )]
    Algorithm {
        key: &'static str,
        path: PathBuf,
        algorithm: String,
    },
    /// A line of the trusted keys file is not an OpenSSH public key.
    #[error(
        "{key}: {}:{line}: not an OpenSSH public key (`ssh-ed25519 AAAA... comment`): {detail}",
        path.display()
    )]
    Trusted {
        key: &'static str,
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

/// Signing failed (a broken key; never expected with a key that loaded).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the commit: {0}")]
pub struct SignError(String);

/// Why a commit is not provably promoter's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unproven {
    /// No `gpgsig` header at all.
    #[error("it is not signed")]
    NotSigned,
    /// A signature that is not an SSH signature (GPG, X.509, garbage).
    #[error("its signature is not an SSH signature promoter can read")]
    NotSsh,
    /// Signed by a key promoter does not trust.
    #[error("it is signed by another key ({0})")]
    UnknownKey(String),
    /// The signature does not match the commit (altered after signing) or the namespace.
    #[error("its signature does not match its content")]
    BadSignature,
    /// The commit could not be read.
    #[error("it cannot be read: {0}")]
    Unreadable(String),
}

/// promoter's signing key and the public keys whose signatures count as promoter's.
#[derive(Clone)]
pub struct SigningKeys {
    private: Arc<PrivateKey>,
    trusted: Vec<PublicKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("key", &self.fingerprint())
            .field("trusted", &self.trusted.len())
            .finish()
    }
}

impl SigningKeys {
    /// Loads the private key of `git.signing_key_file` and, when given, the extra trusted public
    /// keys of `git.trusted_signing_keys_file` (one per line; blank lines and `#` comments
    /// are skipped).
    pub fn load(key_file: &Path, trusted_file: Option<&Path>) -> Result<Self, KeyError> {
        const KEY: &str = "git.signing_key_file";
        let unreadable = |detail: String| KeyError::Unreadable {
            key: KEY,
            path: key_file.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(key_file).map_err(|e| unreadable(e.to_string()))?;
        crate::redact::register_file_content(text.trim());
        let private = PrivateKey::from_openssh(text.trim())
            .map_err(|e| unreadable(format!("not an OpenSSH private key ({e})")))?;
        if private.is_encrypted() {
            return Err(KeyError::Encrypted {
                key: KEY,
                path: key_file.to_path_buf(),
            });
        }
        if private.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(KeyError::Algorithm {
                key: KEY,
                path: key_file.to_path_buf(),
                algorithm: private.algorithm().to_string(),
            });
        }
        let mut keys = Self::new(private);
        if let Some(path) = trusted_file {
            keys.trusted.extend(read_trusted(path)?);
        }
        Ok(keys)
    }

    /// Signs with `private`, trusting only its own public key.
    pub fn new(private: PrivateKey) -> Self {
        let own = private.public_key().clone();
        Self {
            private: Arc::new(private),
            trusted: vec![own],
        }
    }

    /// Also trusts signatures of `key` (a previous key, during a rotation).
    pub fn trusting(mut self, key: PublicKey) -> Self {
        self.trusted.push(key);
        self
    }

    /// The public key, in OpenSSH form (`ssh-ed25519 AAAA... comment`): what GitLab and git's
    /// allowed signers file need.
    pub fn public_key(&self) -> String {
        self.private
            .public_key()
            .to_openssh()
            .unwrap_or_else(|_| String::new())
    }

    /// The key's SHA-256 fingerprint, for logs.
    pub fn fingerprint(&self) -> String {
        self.private.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The armored signature of `data` (a commit buffer without its signature), without a
    /// final newline, as git stores it in the `gpgsig` header.
    pub fn sign(&self, data: &[u8]) -> Result<String, SignError> {
        let signature = self
            .private
            .sign(NAMESPACE, HashAlg::Sha512, data)
            .map_err(|e| SignError(e.to_string()))?;
        let pem = signature
            .to_pem(LineEnding::LF)
            .map_err(|e| SignError(e.to_string()))?;
        Ok(pem.trim_end().to_string())
    }

    /// Checks `signature` (armored) over `data` against the trusted keys.
    pub fn verify(&self, signature: &[u8], data: &[u8]) -> Result<(), Unproven> {
        let text = std::str::from_utf8(signature).map_err(|_| Unproven::NotSsh)?;
        if !text
            .trim_start()
            .starts_with("-----BEGIN SSH SIGNATURE-----")
        {
            return Err(Unproven::NotSsh);
        }
        let signature = SshSig::from_pem(text.trim()).map_err(|_| Unproven::NotSsh)?;
        let Some(key) = self
            .trusted
            .iter()
            .find(|k| k.key_data() == signature.public_key())
        else {
            let fingerprint = signature.public_key().fingerprint(HashAlg::Sha256);
            return Err(Unproven::UnknownKey(fingerprint.to_string()));
        };
        key.verify(NAMESPACE, data, &signature)
            .map_err(|_| Unproven::BadSignature)
    }

    /// Proves that `commit` in `repo` is promoter's: its SSH signature verifies against a
    /// trusted key.
    pub fn verify_commit(
        &self,
        repo: &git2::Repository,
        commit: git2::Oid,
    ) -> Result<(), Unproven> {
        let (signature, data) = match repo.extract_signature(&commit, None) {
            Ok(found) => found,
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                return Err(Unproven::NotSigned);
            }
            Err(e) => return Err(Unproven::Unreadable(e.message().to_string())),
        };
        self.verify(&signature, &data)
    }
}

fn read_trusted(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    const KEY: &str = "git.trusted_signing_keys_file";
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Trusted {
        key: KEY,
        path: path.to_path_buf(),
        line: 0,
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = PublicKey::from_openssh(line).map_err(|e| KeyError::Trusted {
            key: KEY,
            path: path.to_path_buf(),
            line: number + 1,
            detail: e.to_string(),
        })?;
        out.push(key);
    }
    Ok(out)
}

/// A key made from `seed`, for tests and benches (deterministic, no randomness needed).
pub fn key_from_seed(seed: [u8; 32], comment: &str) -> PrivateKey {
    let keypair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::from(keypair);
    key.set_comment(comment);
    key
}

/// `key` in OpenSSH private key form (what `ssh-keygen -N ''` writes), for key files.
pub fn private_openssh(key: &PrivateKey) -> String {
    key.to_openssh(LineEnding::LF)
        .map(|pem| pem.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_a_trusted_key_and_unchanged_data() {
        let keys = SigningKeys::new(key_from_seed([1; 32], "promoter"));
        let signature = keys.sign(b"tree 1\n\nmessage\n").unwrap();
        assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        assert!(signature.ends_with("-----END SSH SIGNATURE-----"));
        assert_eq!(
            keys.verify(signature.as_bytes(), b"tree 1\n\nmessage\n"),
            Ok(())
        );
        assert_eq!(
            keys.verify(signature.as_bytes(), b"tree 1\n\nmessage!\n"),
            Err(Unproven::BadSignature)
        );
        let other = SigningKeys::new(key_from_seed([2; 32], "someone"));
        assert!(matches!(
            other.verify(signature.as_bytes(), b"tree 1\n\nmessage\n"),
            Err(Unproven::UnknownKey(_))
        ));
        let rotated = other.trusting(keys.private.public_key().clone());
        assert_eq!(
            rotated.verify(signature.as_bytes(), b"tree 1\n\nmessage\n"),
            Ok(())
        );
        assert_eq!(
            keys.verify(b"-----BEGIN PGP SIGNATURE-----\nxx", b"x"),
            Err(Unproven::NotSsh)
        );
    }

    #[test]
    fn key_files_load_and_bad_ones_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, private_openssh(&key_from_seed([3; 32], "p"))).unwrap();
        let trusted = dir.path().join("trusted");
        let old = key_from_seed([4; 32], "old")
            .public_key()
            .to_openssh()
            .unwrap();
        std::fs::write(&trusted, format!("# the key before May\n\n{old}\n")).unwrap();
        let keys = SigningKeys::load(&key, Some(&trusted)).unwrap();
        assert_eq!(keys.trusted.len(), 2);
        assert!(keys.public_key().starts_with("ssh-ed25519 AAAA"));

        let missing = SigningKeys::load(&dir.path().join("nope"), None).unwrap_err();
        let text = missing.to_string();
        assert!(
            text.starts_with("git.signing_key_file: cannot read"),
            "{text}"
        );
        assert!(text.contains("ssh-keygen -t ed25519 -N ''"), "{text}");

        std::fs::write(&trusted, "ssh-ed25519 not-base64\n").unwrap();
        let bad = SigningKeys::load(&key, Some(&trusted))
            .unwrap_err()
            .to_string();
        assert!(bad.starts_with("git.trusted_signing_keys_file: "), "{bad}");
        assert!(
            bad.contains("trusted:1: not an OpenSSH public key"),
            "{bad}"
        );
    }
}
