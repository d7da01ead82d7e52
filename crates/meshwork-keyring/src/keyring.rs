//! The master key file and the keyring directory of wrapped data keys.
//!
//! Layout of the keyring directory (0700):
//! - `check`: a known text sealed by the master key; opening it proves the master key is right
//!   before anything else is read or written, so a wrong key refuses to start.
//! - `accounts.key`: the data key for account data (names, emails, profiles, audit details).
//! - `workspaces/<uuid>.key`: one data key per workspace.
//!
//! Each `.key` file holds a 32-byte data key sealed by the master key's wrapping sub-key, with the
//! key's name as associated data (so key files cannot be swapped). Files are written atomically
//! (temporary file, fsync, rename) with mode 0600.

use crate::seal::{Aad, DataKey, OpenError};
use crate::secret::SecretKey;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

const CHECK_TEXT: &[u8] = b"meshwork keyring check v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the master key does not open the keyring at {0}: this is not the key the data was written with (check MESHWORK_MASTER_KEY_FILE); refusing to start so that nothing is written")]
    WrongMasterKey(PathBuf),
    #[error("master key file {path} is invalid: {why}")]
    BadMasterKeyFile { path: PathBuf, why: String },
    #[error("key file {path} is corrupt: {source}")]
    CorruptKey { path: PathBuf, source: OpenError },
    #[error("no key for workspace {0} in the keyring (the workspace was deleted, or the keyring is not the one this database was written with)")]
    MissingWorkspaceKey(Uuid),
    #[error("keyring at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The key that wraps every other key. Read from a file that holds 64 hexadecimal digits.
pub struct MasterKey {
    wrap: DataKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Reads the master key at `path`, creating it (mode 0600, fresh random key) when absent and
    /// `create` is true. Returns the key and whether it was just created.
    pub fn load_or_create(path: &Path, create: bool) -> Result<(Self, bool), KeyringError> {
        match fs::read_to_string(path).map(zeroize::Zeroizing::new) {
            Ok(text) => {
                let key = Self::parse(path, &text)?;
                refuse_shared(path)?;
                Ok((key, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = SecretKey::generate();
                let text =
                    zeroize::Zeroizing::new(format!("{}\n", hex::encode(key.dangerously_expose())));
                write_atomic(path, text.as_bytes())?;
                Ok((Self::from_secret(key), true))
            }
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Parses the text of a master key file (64 hexadecimal digits, surrounding space ignored).
    /// (Its file's permissions are checked by [`MasterKey::load_or_create`].)
    pub fn from_file_text(text: &str) -> Result<Self, KeyringError> {
        Self::parse(Path::new("<text>"), text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyringError> {
        let bad = |why: &str| KeyringError::BadMasterKeyFile {
            path: path.to_path_buf(),
            why: why.into(),
        };
        let hex_text = zeroize::Zeroizing::new(text.trim().to_string());
        if hex_text.len() != 64 {
            return Err(bad("expected 64 hexadecimal digits (a 256-bit key)"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text.as_bytes(), &mut bytes)
            .map_err(|_| bad("expected 64 hexadecimal digits (a 256-bit key)"))?;
        let key = SecretKey::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(Self::from_secret(key))
    }

    pub fn from_secret(key: SecretKey) -> Self {
        let root = DataKey::from_root(key).derive("keyring-wrap");
        Self {
            wrap: DataKey::from_root(root),
        }
    }

    /// A server-wide secret for `purpose` (see [`Keyring::server_key`]); available before a
    /// keyring is opened, for reading backups.
    pub fn server_key(&self, purpose: &str) -> SecretKey {
        self.wrap.derive(&format!("server/{purpose}"))
    }

    fn wrap(&self, name: &str, key: &SecretKey) -> Vec<u8> {
        self.wrap.seal(aad(name), key.dangerously_expose())
    }

    fn unwrap(&self, name: &str, sealed: &[u8]) -> Result<SecretKey, OpenError> {
        let bytes = zeroize::Zeroizing::new(self.wrap.open(aad(name), sealed)?);
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| OpenError::TooShort(bytes.len()))?;
        Ok(SecretKey::from_bytes(arr))
    }
}

fn aad(name: &str) -> Aad<'_> {
    Aad {
        scope: "keyring",
        record: name,
        field: "key",
    }
}

/// A master key file others can read is refused: anyone who can read it can read everything.
fn refuse_shared(path: &Path) -> Result<(), KeyringError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyringError::BadMasterKeyFile {
                path: path.to_path_buf(),
                why: format!(
                    "it is readable by other users (mode {:o}); make it private with `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory of wrapped data keys, with unwrapped keys cached in memory.
pub struct Keyring {
    dir: PathBuf,
    master: MasterKey,
    cache: RwLock<HashMap<String, Arc<DataKey>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Opens the keyring at `dir`, creating it when absent. Proves the master key first: with the
    /// wrong key this fails with `WrongMasterKey` and writes nothing.
    pub fn open(dir: &Path, master: MasterKey) -> Result<Self, KeyringError> {
        let check = dir.join("check");
        let mut fresh = false;
        match fs::read(&check) {
            Ok(sealed) => {
                let ok = master
                    .wrap
                    .open(aad("check"), &sealed)
                    .map(|t| t == CHECK_TEXT)
                    .unwrap_or(false);
                if !ok {
                    return Err(KeyringError::WrongMasterKey(dir.to_path_buf()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let accounts = dir.join("accounts.key");
                if accounts.exists() {
                    // Keys without a check file (a first start cut short): never start a second
                    // keyring over them. The check is written only if this master key opens them.
                    let sealed = fs::read(&accounts).map_err(io_err(&accounts))?;
                    if master.unwrap("accounts", &sealed).is_err() {
                        return Err(KeyringError::WrongMasterKey(dir.to_path_buf()));
                    }
                }
                fs::create_dir_all(dir).map_err(io_err(dir))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                        .map_err(io_err(dir))?;
                }
                fresh = true;
            }
            Err(e) => return Err(io_err(&check)(e)),
        }
        let ring = Self {
            dir: dir.to_path_buf(),
            master,
            cache: RwLock::new(HashMap::new()),
        };
        // The account key is made with the keyring, never lazily: two first requests racing
        // would otherwise each create one, and a keyring restored without it would silently
        // start over with a new key under which no stored email could be found.
        if fresh {
            if !ring.path_of("accounts").exists() {
                ring.create("accounts")?;
            }
            // Written last: a keyring with a check file is complete.
            write_atomic(&check, &ring.master.wrap.seal(aad("check"), CHECK_TEXT))?;
        } else if !ring.path_of("accounts").exists() {
            return Err(KeyringError::Io {
                path: ring.path_of("accounts"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the keyring has no account key; restore accounts.key from your keyring backup",
                ),
            });
        }
        ring.account_key()?;
        Ok(ring)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    fn cached(&self, name: &str) -> Option<Arc<DataKey>> {
        self.cache
            .read()
            .expect("keyring cache lock")
            .get(name)
            .cloned()
    }

    fn load(&self, name: &str) -> Result<Option<Arc<DataKey>>, KeyringError> {
        if let Some(k) = self.cached(name) {
            return Ok(Some(k));
        }
        let path = self.path_of(name);
        let sealed = match fs::read(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let root =
            self.master
                .unwrap(name, &sealed)
                .map_err(|source| KeyringError::CorruptKey {
                    path: path.clone(),
                    source,
                })?;
        let key = Arc::new(DataKey::from_root(root));
        self.cache
            .write()
            .expect("keyring cache lock")
            .insert(name.to_string(), key.clone());
        Ok(Some(key))
    }

    fn create(&self, name: &str) -> Result<Arc<DataKey>, KeyringError> {
        let root = SecretKey::generate();
        write_atomic(&self.path_of(name), &self.master.wrap(name, &root))?;
        let key = Arc::new(DataKey::from_root(root));
        self.cache
            .write()
            .expect("keyring cache lock")
            .insert(name.to_string(), key.clone());
        Ok(key)
    }

    /// The key for account data, created on first use.
    /// The key for account data (created with the keyring).
    pub fn account_key(&self) -> Result<Arc<DataKey>, KeyringError> {
        self.load("accounts")?.ok_or_else(|| KeyringError::Io {
            path: self.path_of("accounts"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "the account key is missing"),
        })
    }

    fn workspace_name(ws: Uuid) -> String {
        format!("workspaces/{ws}")
    }

    /// Creates the key of a new workspace. Called before the workspace row is written, so a crash
    /// in between leaves an unused key file, never a workspace without a key.
    pub fn create_workspace_key(&self, ws: Uuid) -> Result<Arc<DataKey>, KeyringError> {
        self.create(&Self::workspace_name(ws))
    }

    pub fn workspace_key(&self, ws: Uuid) -> Result<Arc<DataKey>, KeyringError> {
        self.load(&Self::workspace_name(ws))?
            .ok_or(KeyringError::MissingWorkspaceKey(ws))
    }

    /// A server-wide secret for `purpose` (partnership keys, the overlap identity key), derived
    /// from the master key on demand: like the master key, it is never stored, in the database or
    /// in the keyring directory, and every server sharing the master key derives the same one.
    pub fn server_key(&self, purpose: &str) -> SecretKey {
        self.master.server_key(purpose)
    }

    /// Crypto-shredding: removes the workspace's key, making its data unreadable everywhere. The
    /// file is overwritten before it is unlinked (best effort: the file system may keep old blocks,
    /// which is one more reason the master key itself must be guarded).
    pub fn destroy_workspace_key(&self, ws: Uuid) -> Result<(), KeyringError> {
        let name = Self::workspace_name(ws);
        self.cache
            .write()
            .expect("keyring cache lock")
            .remove(&name);
        let path = self.path_of(&name);
        match fs::metadata(&path) {
            Ok(meta) => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.write_all(&vec![0u8; meta.len() as usize])
                    .map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
                fs::remove_file(&path).map_err(io_err(&path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review finding 14: a master key file others can read is refused.
    #[cfg(unix)]
    #[test]
    fn a_master_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path, true).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load_or_create(&path, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("readable by other users") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(MasterKey::load_or_create(&path, false).is_ok());
    }

    #[test]
    fn master_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (_, created) = MasterKey::load_or_create(&path, true).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (_, created) = MasterKey::load_or_create(&path, true).unwrap();
        assert!(!created);
    }

    #[test]
    fn a_bad_master_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, "not hex").unwrap();
        let err = MasterKey::load_or_create(&path, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("master.key") && err.contains("64 hexadecimal"),
            "{err}"
        );
        assert!(MasterKey::load_or_create(&dir.path().join("absent"), false).is_err());
    }

    #[test]
    fn wrong_master_key_refuses_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let kr = dir.path().join("keyring");
        let ring =
            Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([1; 32]))).unwrap();
        let ws = Uuid::now_v7();
        ring.create_workspace_key(ws).unwrap();
        let before: Vec<_> = walk(&kr);
        let err =
            Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([2; 32]))).unwrap_err();
        assert!(matches!(err, KeyringError::WrongMasterKey(_)));
        assert_eq!(walk(&kr), before);
    }

    #[test]
    fn keys_survive_reopening_and_shredding_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let kr = dir.path().join("keyring");
        let ws = Uuid::now_v7();
        let a = Aad {
            scope: "s",
            record: "r",
            field: "f",
        };
        let sealed = {
            let ring =
                Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([1; 32]))).unwrap();
            ring.create_workspace_key(ws).unwrap().seal(a, b"hello")
        };
        let ring =
            Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([1; 32]))).unwrap();
        assert_eq!(
            ring.workspace_key(ws).unwrap().open(a, &sealed).unwrap(),
            b"hello"
        );
        ring.destroy_workspace_key(ws).unwrap();
        assert!(matches!(
            ring.workspace_key(ws),
            Err(KeyringError::MissingWorkspaceKey(_))
        ));
    }

    #[test]
    fn swapped_key_files_do_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let kr = dir.path().join("keyring");
        let ring =
            Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([1; 32]))).unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        ring.create_workspace_key(a).unwrap();
        ring.create_workspace_key(b).unwrap();
        let pa = kr.join(format!("workspaces/{a}.key"));
        let pb = kr.join(format!("workspaces/{b}.key"));
        fs::copy(&pa, &pb).unwrap();
        let fresh =
            Keyring::open(&kr, MasterKey::from_secret(SecretKey::from_bytes([1; 32]))).unwrap();
        assert!(matches!(
            fresh.workspace_key(b),
            Err(KeyringError::CorruptKey { .. })
        ));
    }

    fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
        out.sort();
        out
    }
}
