//! Backups of a domain store: a consistent snapshot taken by the running
//! service and streamed as chunks, the file format they are kept in (the
//! chunks, length-delimited), and restoring a file into an empty store.

use std::io::{Read, Write};
use std::path::Path;

use prost::Message;

use cetrack_contract::dates::now;
use cetrack_contract::domain::Domain;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::pagination::fingerprint;
use cetrack_contract::proto::{BackupChunk, BackupEntry, BackupHeader, BackupTrailer};

use crate::{Store, StoreConfig, Tree, SCHEMA_VERSION};

/// Bytes of entries per chunk.
const CHUNK_BYTES: usize = 1024 * 1024;

/// A running checksum over entries.
#[derive(Debug, Default, Clone, Copy)]
pub struct Checksum {
    value: u64,
    count: i64,
}

impl Checksum {
    /// Adds one entry.
    pub fn add(&mut self, e: &BackupEntry) {
        let h = fingerprint(&[e.tree.as_bytes(), &e.key, &e.value]);
        self.value = fingerprint(&[&self.value.to_be_bytes(), &h.to_be_bytes()]);
        self.count += 1;
    }

    /// The trailer that closes a backup of the entries added.
    pub fn trailer(&self) -> BackupTrailer {
        BackupTrailer {
            entry_count: self.count,
            checksum: self.value,
        }
    }
}

/// Takes a snapshot of `store` and cuts it into chunks: a header first, a
/// trailer last.
pub fn snapshot_chunks(store: &Store) -> Result<Vec<BackupChunk>> {
    let (revision, entries) = store.snapshot()?;
    let mut chunks = vec![BackupChunk {
        header: Some(BackupHeader {
            domain: store.domain().to_proto() as i32,
            schema_version: SCHEMA_VERSION,
            revision: revision as i64,
            snapshot_time: Some(now()),
            entry_count: entries.len() as i64,
        }),
        ..Default::default()
    }];
    let mut sum = Checksum::default();
    let mut bytes = 0;
    for (tree, key, value) in entries {
        let tree = tree.name().to_string();
        bytes += tree.len() + key.len() + value.len();
        let e = BackupEntry { tree, key, value };
        sum.add(&e);
        if let Some(last) = chunks.last_mut() {
            last.entries.push(e);
        }
        if bytes >= CHUNK_BYTES {
            chunks.push(BackupChunk::default());
            bytes = 0;
        }
    }
    match chunks.last_mut() {
        Some(last) => last.trailer = Some(sum.trailer()),
        None => chunks.push(BackupChunk {
            trailer: Some(sum.trailer()),
            ..Default::default()
        }),
    }
    Ok(chunks)
}

/// Appends one chunk to a backup file.
pub fn write_chunk(out: &mut dyn Write, chunk: &BackupChunk) -> std::io::Result<()> {
    out.write_all(&chunk.encode_length_delimited_to_vec())
}

/// A backup read back and verified.
#[derive(Debug, Clone)]
pub struct Backup {
    /// What it holds.
    pub header: BackupHeader,
    /// Every entry.
    pub entries: Vec<BackupEntry>,
}

/// Checks a sequence of chunks: header first, trailer last, count and checksum
/// matching.
pub fn assemble(chunks: Vec<BackupChunk>) -> Result<Backup> {
    let bad = |why: &str| Error::invalid("backup", why.to_string());
    let mut header = None;
    let mut trailer = None;
    let mut entries = Vec::new();
    let mut sum = Checksum::default();
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        if c.header.is_some() != (i == 0) {
            return Err(bad("the header must open the backup, once"));
        }
        if c.trailer.is_some() != (i + 1 == n) {
            return Err(bad("the trailer must close the backup, once"));
        }
        header = header.or(c.header);
        trailer = trailer.or(c.trailer);
        for e in c.entries {
            sum.add(&e);
            entries.push(e);
        }
    }
    let (Some(header), Some(trailer)) = (header, trailer) else {
        return Err(bad("the backup is incomplete"));
    };
    if trailer != sum.trailer() || header.entry_count != trailer.entry_count {
        return Err(bad(
            "the backup is damaged: its entries do not match its checksum",
        ));
    }
    Ok(Backup { header, entries })
}

/// Reads and verifies a backup file.
pub fn read_file(path: &Path) -> Result<Backup> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::invalid("backup", format!("cannot read {}: {e}", path.display())))?;
    let mut buf = bytes.as_slice();
    let mut chunks = Vec::new();
    while !buf.is_empty() {
        let c = BackupChunk::decode_length_delimited(&mut buf).map_err(|e| {
            Error::invalid(
                "backup",
                format!("{} is not a cetrack backup: {e}", path.display()),
            )
        })?;
        chunks.push(c);
    }
    assemble(chunks)
}

/// Restores a backup into the empty store of `domain` in `data_dir`; returns
/// the last revision restored. The store is built in a staging directory
/// beside `data_dir`, verified (every record reads back, the summary
/// counters equal a recount, the last revision is the header's), and only
/// then renamed into place: a restore that fails or is cut short leaves no
/// half-restored store for the service to open.
pub fn restore(domain: Domain, data_dir: &Path, backup: Backup) -> Result<u64> {
    if Domain::from_proto(backup.header.domain) != Some(domain) {
        return Err(Error::FailedPrecondition(format!(
            "the backup holds another domain than {domain}"
        )));
    }
    let storage = |what: &str, e: std::io::Error| Error::Storage(format!("{what}: {e}"));
    // Whatever is in `data_dir` must be an empty store (or nothing).
    let existing = data_dir.exists()
        && std::fs::read_dir(data_dir)
            .map_err(|e| storage(&format!("cannot read {}", data_dir.display()), e))?
            .next()
            .is_some();
    if existing {
        let store = open(domain, data_dir)?;
        if store.durable_revision() != 0 || !store.all()?.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "the store in {} is not empty; restore only into an empty data directory",
                data_dir.display()
            )));
        }
    }
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| domain.slug().to_string());
    let staging = data_dir.with_file_name(format!(".{name}.restoring"));
    if staging.exists() {
        // What an earlier restore that was cut short left.
        std::fs::remove_dir_all(&staging)
            .map_err(|e| storage(&format!("cannot remove {}", staging.display()), e))?;
    }
    let restored = restore_into(domain, &staging, backup);
    let revision = match restored {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if existing {
        std::fs::remove_dir_all(data_dir)
            .map_err(|e| storage(&format!("cannot replace {}", data_dir.display()), e))?;
    }
    std::fs::rename(&staging, data_dir).map_err(|e| {
        storage(
            &format!(
                "cannot move {} to {}",
                staging.display(),
                data_dir.display()
            ),
            e,
        )
    })?;
    Ok(revision)
}

/// Opens the store of `domain` in `dir`.
fn open(domain: Domain, dir: &Path) -> Result<Store> {
    Store::open(&StoreConfig {
        domain,
        path: dir.to_path_buf(),
        cache_capacity: 64 * 1024 * 1024,
    })
    .map_err(|e| Error::FailedPrecondition(e.to_string()))
}

/// Writes `backup` into a new store in `dir` and verifies it; the store is
/// closed (its files released) when this returns.
fn restore_into(domain: Domain, dir: &Path, backup: Backup) -> Result<u64> {
    let store = open(domain, dir)?;
    let entries = backup
        .entries
        .into_iter()
        .map(|e| match Tree::from_name(&e.tree) {
            Some(tree) => Ok((tree, e.key, e.value)),
            None => Err(Error::invalid(
                "backup",
                format!("unknown tree `{}`", e.tree),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    let revision = store.restore(entries)?;
    if revision != backup.header.revision.unsigned_abs() {
        return Err(Error::invalid(
            "backup",
            format!(
                "the backup's header names revision {}, its entries revision {revision}",
                backup.header.revision
            ),
        ));
    }
    store.verify().map_err(|e| {
        Error::invalid("backup", format!("the restored store does not verify: {e}"))
    })?;
    Ok(revision)
}
