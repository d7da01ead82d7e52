//! [`SealedDirectory`]: a tantivy `Directory` that keeps the index decrypted in memory and writes
//! every file to disk sealed with the workspace key (AES-256-GCM), so the index directory holds no
//! plaintext. Each file is sealed with its workspace and file name as associated data: a file
//! cannot be moved to another workspace's index or renamed inside one.

use meshwork_keyring::{Aad, DataKey};
use std::fs;
use std::io::{self, BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, FileHandle, RamDirectory, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};

/// The suffix of sealed files on disk (`meta.json` is stored as `meta.json.sealed`).
const SEALED: &str = "sealed";

/// The error when a sealed file cannot be read back: a wrong key, a truncated or altered file.
#[derive(Debug, thiserror::Error)]
#[error("index file {file} cannot be opened: {reason}")]
pub struct CorruptFile {
    pub file: String,
    pub reason: String,
}

/// Index files decrypted in memory, mirrored sealed on disk.
#[derive(Clone)]
pub struct SealedDirectory {
    ram: RamDirectory,
    disk: Arc<PathBuf>,
    key: Arc<DataKey>,
    scope: Arc<str>,
}

impl std::fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedDirectory")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl SealedDirectory {
    /// Opens (creating it when missing) the directory at `disk`, decrypting every sealed file into
    /// memory. `scope` names the workspace; it is bound into every file.
    pub fn open(disk: &Path, key: Arc<DataKey>, scope: &str) -> Result<Self, crate::SearchError> {
        fs::create_dir_all(disk).map_err(|e| crate::SearchError::io(disk, e))?;
        let dir = Self {
            ram: RamDirectory::create(),
            disk: Arc::new(disk.to_path_buf()),
            key,
            scope: scope.into(),
        };
        for entry in fs::read_dir(disk).map_err(|e| crate::SearchError::io(disk, e))? {
            let entry = entry.map_err(|e| crate::SearchError::io(disk, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let Some(plain_name) = name.strip_suffix(&format!(".{SEALED}")) else {
                // Temporary files of an interrupted write: never renamed, so never part of a
                // commit.
                if name.ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
                continue;
            };
            let sealed = fs::read(entry.path()).map_err(|e| crate::SearchError::io(disk, e))?;
            let plain = dir.open_sealed(plain_name, &sealed)?;
            dir.ram
                .atomic_write(Path::new(plain_name), &plain)
                .map_err(|e| crate::SearchError::io(disk, e))?;
        }
        Ok(dir)
    }

    /// The bytes held in memory (the decrypted index).
    pub fn memory_bytes(&self) -> usize {
        self.ram.total_mem_usage()
    }

    fn aad<'a>(&'a self, file: &'a str) -> Aad<'a> {
        Aad {
            scope: &self.scope,
            record: "search-index",
            field: file,
        }
    }

    fn open_sealed(&self, file: &str, sealed: &[u8]) -> Result<Vec<u8>, CorruptFile> {
        self.key
            .open(self.aad(file), sealed)
            .map_err(|e| CorruptFile {
                file: file.to_string(),
                reason: e.to_string(),
            })
    }

    fn disk_path(&self, file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(format!(".{SEALED}"));
        self.disk.join(name)
    }

    /// Seals `plain` and writes it with a rename, so a crash leaves the old file or the new one.
    fn persist(&self, file: &Path, plain: &[u8], sync: bool) -> io::Result<()> {
        if is_lock(file) {
            return Ok(());
        }
        let name = file.to_string_lossy();
        let sealed = self.key.seal(self.aad(&name), plain);
        let target = self.disk_path(file);
        let tmp = target.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&sealed)?;
            if sync {
                f.sync_all()?;
            }
        }
        fs::rename(&tmp, &target)
    }
}

/// Tantivy's lock files live in memory only: one process owns a workspace's index.
fn is_lock(file: &Path) -> bool {
    file.to_string_lossy().ends_with(".lock")
}

struct SealingWriter {
    path: PathBuf,
    dir: SealedDirectory,
    data: Cursor<Vec<u8>>,
}

impl Write for SealingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(self.data.get_mut());
        self.dir.persist(&self.path, &data, true)?;
        // Replace the empty placeholder made by `open_write` with the finished file.
        let _ = self.dir.ram.delete(&self.path);
        self.dir.ram.atomic_write(&self.path, &data)
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.ram.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.ram.delete(path)?;
        match fs::remove_file(self.disk_path(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DeleteError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_path_buf(),
            }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.ram.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        // Creates the (empty) file in memory, refusing an existing one as tantivy expects.
        drop(self.ram.open_write(path)?);
        Ok(BufWriter::new(Box::new(SealingWriter {
            path: path.to_path_buf(),
            dir: self.clone(),
            data: Cursor::new(Vec::new()),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.ram.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.persist(path, data, true)?;
        self.ram.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        #[cfg(unix)]
        fs::File::open(&*self.disk)?.sync_all()?;
        Ok(())
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.ram.watch(watch_callback)
    }
}
