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

use crate::{RawEntry, Snapshot, Store, StoreConfig, Tree, SCHEMA_VERSION};

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

/// Reads `snapshot` of `store` and cuts it into chunks of about
/// [`CHUNK_BYTES`], handed to `send` one at a time as each fills (a header
/// first, a trailer last): what is held at once is one chunk, whatever the
/// size of the store. An error of `send` (the caller went away) ends it.
/// The header's `entry_count` is 0 (not known until the end): the trailer
/// counts the entries.
pub fn stream_chunks(
    store: &Store,
    snapshot: &Snapshot,
    mut send: impl FnMut(BackupChunk) -> Result<()>,
) -> Result<()> {
    let mut current = BackupChunk {
        header: Some(BackupHeader {
            domain: store.domain().to_proto() as i32,
            schema_version: SCHEMA_VERSION,
            revision: snapshot.revision() as i64,
            snapshot_time: Some(now()),
            entry_count: 0,
        }),
        ..Default::default()
    };
    let mut sum = Checksum::default();
    let mut bytes = 0;
    snapshot.entries(|tree, key, value| {
        let tree = tree.name().to_string();
        bytes += tree.len() + key.len() + value.len();
        let e = BackupEntry {
            tree,
            key: key.to_vec(),
            value: value.to_vec(),
        };
        sum.add(&e);
        current.entries.push(e);
        if bytes >= CHUNK_BYTES {
            bytes = 0;
            send(std::mem::take(&mut current))?;
        }
        Ok(())
    })?;
    current.trailer = Some(sum.trailer());
    send(current)
}

/// Takes a snapshot of `store` and cuts it into chunks, all in memory (for
/// tests and small stores; a service streams them with [`stream_chunks`]).
pub fn snapshot_chunks(store: &Store) -> Result<Vec<BackupChunk>> {
    let snapshot = store.snapshot()?;
    let mut chunks = Vec::new();
    stream_chunks(store, &snapshot, |c| {
        chunks.push(c);
        Ok(())
    })?;
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
    if trailer != sum.trailer() || !counted(&header, &trailer) {
        return Err(bad(
            "the backup is damaged: its entries do not match its checksum",
        ));
    }
    Ok(Backup { header, entries })
}

/// Whether the header's count, where it gives one, is the trailer's (a
/// streamed backup's header gives none: 0).
fn counted(header: &BackupHeader, trailer: &BackupTrailer) -> bool {
    header.entry_count == 0 || header.entry_count == trailer.entry_count
}

/// Most bytes of one chunk in a backup file (a chunk is about
/// [`CHUNK_BYTES`] plus one entry, an entry at most a record's size cap).
const MAX_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// The entries of a backup file, read and checked chunk by chunk (header
/// first, trailer last, count and checksum matching at the end), so that a
/// backup of any size is verified or restored holding one chunk at a time.
/// A fault is the last item, an error.
pub struct BackupReader<R> {
    input: R,
    name: String,
    header: BackupHeader,
    pending: std::vec::IntoIter<BackupEntry>,
    trailer: Option<BackupTrailer>,
    sum: Checksum,
    done: bool,
}

impl BackupReader<std::io::BufReader<std::fs::File>> {
    /// Opens the backup file at `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::invalid("backup", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::new(std::io::BufReader::new(file), path.display().to_string())
    }
}

impl<R: Read> BackupReader<R> {
    /// Reads the backup `input` (called `name` in errors) as far as its
    /// header.
    pub fn new(input: R, name: String) -> Result<Self> {
        let mut reader = Self {
            input,
            name,
            header: BackupHeader::default(),
            pending: Vec::new().into_iter(),
            trailer: None,
            sum: Checksum::default(),
            done: false,
        };
        let Some(first) = reader.chunk()? else {
            return Err(Error::invalid(
                "backup",
                format!("{} is empty", reader.name),
            ));
        };
        let Some(header) = first.header else {
            return Err(Error::invalid(
                "backup",
                "the header must open the backup, once",
            ));
        };
        reader.header = header;
        reader.hold(first);
        Ok(reader)
    }

    /// The backup's header.
    pub fn header(&self) -> &BackupHeader {
        &self.header
    }

    /// How many entries were read so far.
    pub fn entries_read(&self) -> i64 {
        self.sum.count
    }

    /// The next chunk of the file; `None` at its end.
    fn chunk(&mut self) -> Result<Option<BackupChunk>> {
        let bad = |name: &str, why: String| {
            Error::invalid(
                "backup",
                format!("{name} is not a whole cetrack backup: {why}"),
            )
        };
        // The chunk's length, a varint.
        let mut len: u64 = 0;
        for i in 0..10 {
            let mut byte = [0u8];
            match self.input.read(&mut byte) {
                Ok(0) if i == 0 => return Ok(None),
                Ok(0) => return Err(bad(&self.name, "it ends inside a chunk's length".into())),
                Ok(_) => {}
                Err(e) => return Err(bad(&self.name, e.to_string())),
            }
            len |= u64::from(byte[0] & 0x7f) << (7 * i);
            if byte[0] & 0x80 == 0 {
                break;
            }
            if i == 9 {
                return Err(bad(&self.name, "a chunk's length does not read".into()));
            }
        }
        if len > MAX_CHUNK_BYTES {
            return Err(bad(&self.name, format!("a chunk of {len} bytes")));
        }
        let mut bytes = vec![0; len as usize];
        self.input
            .read_exact(&mut bytes)
            .map_err(|e| bad(&self.name, e.to_string()))?;
        BackupChunk::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| bad(&self.name, e.to_string()))
    }

    /// Holds the entries and trailer of `chunk`.
    fn hold(&mut self, chunk: BackupChunk) {
        self.pending = chunk.entries.into_iter();
        self.trailer = chunk.trailer;
    }

    /// Reads the next chunk, or checks the end once the trailer came.
    fn advance(&mut self) -> Result<()> {
        let bad = |why: &str| Error::invalid("backup", why.to_string());
        match (self.trailer.take(), self.chunk()?) {
            (Some(_), Some(_)) => Err(bad("the trailer must close the backup, once")),
            (Some(trailer), None) => {
                self.done = true;
                if trailer != self.sum.trailer() || !counted(&self.header, &trailer) {
                    return Err(bad(
                        "the backup is damaged: its entries do not match its checksum",
                    ));
                }
                self.trailer = Some(trailer);
                Ok(())
            }
            (None, None) => Err(bad("the backup is incomplete")),
            (None, Some(chunk)) if chunk.header.is_some() => {
                Err(bad("the header must open the backup, once"))
            }
            (None, Some(chunk)) if chunk.entries.is_empty() && chunk.trailer.is_none() => {
                Err(bad("a chunk holds nothing"))
            }
            (None, Some(chunk)) => {
                self.hold(chunk);
                Ok(())
            }
        }
    }
}

impl<R: Read> Iterator for BackupReader<R> {
    type Item = Result<BackupEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.next() {
                self.sum.add(&e);
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.advance() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

/// Reads and verifies a backup file, holding one chunk at a time; its
/// header and how many entries it holds.
pub fn verify_file(path: &Path) -> Result<(BackupHeader, i64)> {
    let mut reader = BackupReader::open(path)?;
    for e in reader.by_ref() {
        e?;
    }
    Ok((*reader.header(), reader.entries_read()))
}

/// Reads and verifies a backup file, all in memory.
pub fn read_file(path: &Path) -> Result<Backup> {
    let reader = BackupReader::open(path)?;
    let header = *reader.header();
    let entries = reader.collect::<Result<Vec<_>>>()?;
    Ok(Backup { header, entries })
}

/// Restores the backup file at `path` into the empty store of `domain` in
/// `data_dir`, as [`restore`] does, reading it one chunk at a time; the
/// last revision restored and the number of entries.
pub fn restore_file(domain: Domain, data_dir: &Path, path: &Path) -> Result<(u64, i64)> {
    let mut reader = BackupReader::open(path)?;
    let header = *reader.header();
    let revision = restore_from(domain, data_dir, &header, &mut reader)?;
    Ok((revision, reader.entries_read()))
}

/// Restores a backup into the empty store of `domain` in `data_dir`; returns
/// the last revision restored. The store is built in a staging directory
/// beside `data_dir`, verified (every record reads back, the summary
/// counters equal a recount, the last revision is the header's), and only
/// then renamed into place: a restore that fails or is cut short leaves no
/// half-restored store for the service to open.
pub fn restore(domain: Domain, data_dir: &Path, backup: Backup) -> Result<u64> {
    restore_from(
        domain,
        data_dir,
        &backup.header,
        backup.entries.into_iter().map(Ok),
    )
}

/// [`restore`] of the entries `entries` under `header`.
fn restore_from(
    domain: Domain,
    data_dir: &Path,
    header: &BackupHeader,
    entries: impl Iterator<Item = Result<BackupEntry>>,
) -> Result<u64> {
    if Domain::from_proto(header.domain) != Some(domain) {
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
    let restored = restore_into(domain, &staging, header, entries);
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
fn restore_into(
    domain: Domain,
    dir: &Path,
    header: &BackupHeader,
    entries: impl Iterator<Item = Result<BackupEntry>>,
) -> Result<u64> {
    let store = open(domain, dir)?;
    let entries = entries.map(|e| {
        let e = e?;
        match Tree::from_name(&e.tree) {
            Some(tree) => Ok::<RawEntry, Error>((tree, e.key, e.value)),
            None => Err(Error::invalid(
                "backup",
                format!("unknown tree `{}`", e.tree),
            )),
        }
    });
    let revision = store.restore(entries)?;
    if revision != header.revision.unsigned_abs() {
        return Err(Error::invalid(
            "backup",
            format!(
                "the backup's header names revision {}, its entries revision {revision}",
                header.revision
            ),
        ));
    }
    store.verify().map_err(|e| {
        Error::invalid("backup", format!("the restored store does not verify: {e}"))
    })?;
    Ok(revision)
}
