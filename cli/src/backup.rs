//! `cetrack backup` and `cetrack restore`: a consistent snapshot of a domain
//! store taken by the running service, and loading it into an empty store.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use cetrack_contract::proto::BackupStoreRequest;
use cetrack_contract::Domain;
use cetrack_store::backup;
use futures::StreamExt;

use crate::client::Endpoints;
use crate::error::StatusError;

/// Streams the backup of `domain` into `out` (written beside it first, then
/// verified and renamed, so `out` is never a partial backup).
pub(crate) async fn backup(
    endpoints: &Endpoints,
    domain: Domain,
    out: &Path,
) -> anyhow::Result<()> {
    let mut client = endpoints.store_admin(domain).await?;
    let request = tonic::Request::new(BackupStoreRequest {
        parent: domain.parent(),
    });
    let mut stream = client
        .backup_store(request)
        .await
        .map_err(StatusError)?
        .into_inner();
    let partial = out.with_extension("partial");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?,
    );
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StatusError)?;
        backup::write_chunk(&mut file, &chunk)?;
    }
    file.flush()?;
    file.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?
        .sync_all()?;
    let (header, entries) =
        backup::verify_file(&partial).context("the backup received does not verify")?;
    std::fs::rename(&partial, out)?;
    eprintln!(
        "backed up {domain} at revision {} ({entries} entries) to {}",
        header.revision,
        out.display()
    );
    Ok(())
}

/// Restores the backup `from` into the empty store of `domain` in `data_dir`.
pub(crate) fn restore(domain: Domain, from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let (revision, entries) = backup::restore_file(domain, data_dir, from)?;
    eprintln!(
        "restored {domain} at revision {revision} ({entries} entries) into {}",
        data_dir.display()
    );
    Ok(())
}
