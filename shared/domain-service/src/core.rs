//! The behaviour of a domain service, independent of gRPC: it checks requests,
//! applies the domain rules and asks the store to write.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use cetrack_contract::auth::{Caller, Permission};
use cetrack_contract::dates;
use cetrack_contract::domain::Domain;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::names::InitiativeName;
use cetrack_contract::pagination::{self, PageToken};
use cetrack_contract::proto::{
    AddProgressUpdateRequest, Change, ChangeType, CreateInitiativeRequest, DeleteInitiativeRequest,
    DomainSummary, GetDomainSummaryRequest, GetInitiativeRequest, Initiative,
    ListDueMilestonesRequest, ListDueMilestonesResponse, ListHistoryRequest, ListHistoryResponse,
    ListInitiativesRequest, UpdateInitiativeRequest, UpdateMilestoneRequest, WatchChangesRequest,
};
use cetrack_contract::requests::Served;
use cetrack_contract::rules;
use cetrack_contract::validate::{self, Violations};
use cetrack_contract::wire::{self, ListInitiativesResponse};
use cetrack_server::streams::StreamLimits;
use cetrack_store::{Idempotency, Page, Plan, Store};

use crate::feed::{self, Feed};
use crate::seal::Sealer;

/// Most change streams one domain service keeps open at once; one more is
/// RESOURCE_EXHAUSTED.
pub const MAX_WATCHES: usize = 1_000;

/// Most change streams one caller (the subject of their token) may keep
/// open on one domain service; one more is RESOURCE_EXHAUSTED.
pub const MAX_WATCHES_PER_CALLER: usize = 100;

/// What a write answers: the initiative, and whether the answer is the
/// first one of an earlier request with the same request id, replayed.
#[derive(Debug, Clone)]
pub struct Written {
    /// The initiative as the write left it (for a replay, as the first
    /// request left it).
    pub initiative: Initiative,
    /// Nothing was written now: the answer is replayed.
    pub replayed: bool,
}

impl Written {
    /// The answer, if `caller` may see it: a replayed answer is the record
    /// as the first request left it, and a caller without clearance for it
    /// (who sent the same request with the same request id) learns nothing
    /// of it (NOT_FOUND, like a record they may not see).
    fn seen_by(self, caller: &Caller) -> Result<Self> {
        if caller.may_see(&self.initiative) {
            Ok(self)
        } else {
            Err(not_found(&self.initiative.name))
        }
    }
}

impl From<cetrack_store::Outcome> for Written {
    fn from(outcome: cetrack_store::Outcome) -> Self {
        Self {
            replayed: outcome.replayed(),
            initiative: outcome.into_initiative(),
        }
    }
}

/// One domain's service logic over its store.
#[derive(Debug, Clone)]
pub struct DomainCore {
    domain: Domain,
    store: Store,
    watches: StreamLimits,
    /// Every durable change, read once for every change stream.
    feed: Feed,
    /// Seals page-token positions the caller may not read.
    sealer: std::sync::Arc<Sealer>,
    /// Backups streaming now, at most [`MAX_BACKUPS`].
    backups: std::sync::Arc<tokio::sync::Semaphore>,
}

fn idempotency<M: Message + Clone>(
    method: &'static str,
    request_id: &str,
    request: &M,
    clear: impl Fn(&mut M),
) -> Option<Idempotency> {
    if request_id.is_empty() {
        return None;
    }
    let mut r = request.clone();
    clear(&mut r);
    Some(Idempotency {
        method,
        request_id: request_id.to_string(),
        fingerprint: r.encode_to_vec(),
    })
}

fn check_etag(current: &Initiative, etag: &str) -> Result<()> {
    if !etag.is_empty() && etag != current.etag {
        return Err(Error::Aborted(format!(
            "etag {etag} is stale: `{}` is now at {}; read it again and retry",
            current.name, current.etag
        )));
    }
    Ok(())
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("initiative `{name}` not found"))
}

/// Most records a list examines on the async worker beyond its page size
/// (records the filter or the caller's clearance leave out) before it hands
/// the page to a blocking thread.
const INLINE_EXAMINED: usize = 100;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("read task failed: {e}")))?
}

impl DomainCore {
    /// The logic of `domain` over `store`, its change streams fed by `feed`
    /// (see [`Feed::start`]).
    pub fn new(domain: Domain, store: Store, feed: Feed) -> Result<Self> {
        Ok(Self {
            sealer: std::sync::Arc::new(Sealer::new()?),
            domain,
            store,
            watches: StreamLimits::new(
                format!("the {domain} service"),
                MAX_WATCHES,
                MAX_WATCHES_PER_CALLER,
            ),
            feed,
            backups: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_BACKUPS)),
        })
    }

    /// The domain served.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The checks of this domain's requests.
    fn served(&self) -> Served {
        Served(self.domain)
    }

    /// CreateInitiative: editors and admins; a RESTRICTED record needs
    /// clearance.
    pub async fn create(&self, caller: &Caller, req: CreateInitiativeRequest) -> Result<Written> {
        caller.check_edit(self.domain)?;
        let generated = format!("i{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let mut checked = self.served().create(&req, &generated)?;
        caller.check_marking(&checked.record, self.domain)?;
        rules::date_facts(
            None,
            &mut checked.record,
            true,
            dates::today(),
            dates::now(),
            "initiative",
        )?;
        let (record, name) = (
            checked.record,
            InitiativeName::new(self.domain, checked.id.clone()),
        );
        let idem = idempotency("create", &req.request_id, &req, |r| r.request_id.clear());
        let outcome = self
            .store
            .write(
                &checked.id,
                idem,
                &caller.signature(),
                move |current| match current {
                    Some(_) => Err(Error::AlreadyExists(format!(
                        "initiative `{name}` already exists"
                    ))),
                    None => Ok(Plan::Put {
                        record: record.clone(),
                        change_type: ChangeType::Created,
                    }),
                },
            )
            .await?;
        Written::from(outcome).seen_by(caller)
    }

    /// GetInitiative: any role; a record the caller may not see does not
    /// exist for them. The record as the store encoded it.
    pub async fn get(
        &self,
        caller: &Caller,
        req: GetInitiativeRequest,
    ) -> Result<wire::Initiative> {
        caller.check_read(self.domain)?;
        let name = self.served().get(&req)?;
        // One key of one tree: sled answers it from its page cache in
        // microseconds, so it is read here rather than handed to a blocking
        // thread (the hop cost more than the read). Passed on as stored:
        // only its marking, kept beside it, is read.
        self.store
            .get_encoded(&name.id)?
            .filter(|(_, spans)| caller.may_see_marked(spans.restricted))
            .map(|(encoded, _)| wire::Initiative::encoded(encoded))
            .ok_or_else(|| not_found(&req.name))
    }

    /// ListInitiatives: any role; what the caller may see, each record as
    /// the store encoded it.
    pub async fn list(
        &self,
        caller: &Caller,
        req: ListInitiativesRequest,
    ) -> Result<ListInitiativesResponse> {
        caller.check_read(self.domain)?;
        let checked = self.served().list(&req)?;
        let store = self.store.clone();
        let (mut filter, mut after, size) = (checked.filter, checked.after_id, checked.page_size);
        if !checked.sealed_after.is_empty() {
            after = Some(
                self.sealer
                    .open(&checked.sealed_after, checked.fingerprint)?,
            );
        }
        filter.hide_restricted = !caller.cleared();
        // A page found among its first few records (a list without a
        // filter, or one an index answers) is read here, from sled's cache;
        // only a longer walk is handed to a blocking thread (the hop cost a
        // page of 50 more than reading it).
        let inline = size.saturating_add(INLINE_EXAMINED);
        let page = match store.list_within(&filter, after.as_deref(), size, inline)? {
            Some(page) => page,
            None => blocking(move || store.list(&filter, after.as_deref(), size)).await?,
        };
        let next_page_token = match (page.more, page.resume_after) {
            (true, Some(last_id)) => {
                let mut token = PageToken {
                    fingerprint: checked.fingerprint,
                    ..Default::default()
                };
                // A position after the last record returned is one the
                // caller saw; any other (the page ended on its budget of
                // records examined) may name one they may not see: sealed.
                if page.resumes_after_returned {
                    token.last_id = last_id;
                } else {
                    token.sealed = self.sealer.seal(&last_id, checked.fingerprint)?;
                }
                pagination::encode(&token)
            }
            _ => String::new(),
        };
        Ok(ListInitiativesResponse {
            initiatives: page.items,
            next_page_token,
        })
    }

    /// ListDueMilestones: any role that may read the domain; what the
    /// caller may see. The store walks its milestones in due order from the
    /// caller's position (see `cetrack_store::Store::due_milestones`) and
    /// only the page's entries are answered.
    pub async fn due_milestones(
        &self,
        caller: &Caller,
        req: ListDueMilestonesRequest,
    ) -> Result<ListDueMilestonesResponse> {
        caller.check_read(self.domain)?;
        let checked = self.served().due_milestones(&req)?;
        let hide_restricted = !caller.cleared();
        let store = self.store.clone();
        let (entries, more) = blocking(move || {
            store.due_milestones(
                &checked.window,
                checked.known_on,
                hide_restricted,
                checked.start_after.as_ref(),
                checked.page_size,
            )
        })
        .await?;
        Ok(ListDueMilestonesResponse {
            entries: entries.into_iter().map(|(_, e)| e).collect(),
            more,
        })
    }

    /// UpdateInitiative: editors and admins; a reporter may change only
    /// their own organization's status and note in its participations.
    /// Marking a record RESTRICTED, or changing one, needs clearance.
    pub async fn update(&self, caller: &Caller, req: UpdateInitiativeRequest) -> Result<Written> {
        let reporter_org = match (
            caller.may_edit(self.domain),
            caller.reporting_org(self.domain),
        ) {
            (true, _) => None,
            (false, Some(org)) => Some(org.to_string()),
            (false, None) => return Err(caller.denied(Permission::Edit, self.domain)),
        };
        let checked = self.served().update(&req)?;
        let (name, input, paths) = (checked.name, checked.input, checked.paths);
        let domain = self.domain;
        let idem = idempotency("update", &req.request_id, &req, |r| r.request_id.clear());
        let full_name = name.to_string();
        let who = caller.clone();
        let (today, now) = (dates::today(), dates::now());
        // A status date is sent when the mask names it, or with `*` when it
        // differs from the current one (a read-modify-write sends the old
        // date back: that dates nothing).
        let names_status_date = paths.iter().any(|p| p == "status_date");
        let names_all = paths.iter().any(|p| p == "*");
        let outcome = self
            .store
            .write(&name.id, idem, &caller.signature(), move |current| {
                let current = seen(current, &who, &full_name)?;
                let mut merged = current.clone();
                rules::apply_mask(&mut merged, &input, &paths);
                let mut v = Violations::default();
                let names_status = paths.iter().any(|p| p == "*" || p == "status");
                if names_status && input.status == 0 {
                    v.add("initiative.status", "required when the mask names it");
                }
                rules::apply_defaults(&mut merged);
                validate::initiative(&mut v, "initiative", &merged, domain, Some(&full_name));
                v.finish()?;
                check_etag(current, &input.etag)?;
                who.check_marking(&merged, domain)?;
                if let Some(org) = &reporter_org {
                    if !only_own_participation(current, &merged, org) {
                        return Err(Error::PermissionDenied(format!(
                            "`{}` lacks the permission initiatives.edit (role editor or admin) in the {domain} domain: as a reporter they may change only the status and note of {org}'s own participation",
                            who.sub
                        )));
                    }
                }
                rules::check_transition(current.status, merged.status)?;
                let status_date_sent = names_status_date
                    || (names_all && input.status_date != current.status_date);
                rules::date_facts(
                    Some(current),
                    &mut merged,
                    status_date_sent,
                    today,
                    now,
                    "initiative",
                )?;
                if rules::changed_fields(Some(current), &merged).is_empty() {
                    return Ok(Plan::Unchanged(current.clone()));
                }
                Ok(Plan::Put {
                    record: merged,
                    change_type: ChangeType::Updated,
                })
            })
            .await?;
        Written::from(outcome).seen_by(caller)
    }

    /// DeleteInitiative: editors and admins; whether it was a replay.
    pub async fn delete(&self, caller: &Caller, req: DeleteInitiativeRequest) -> Result<bool> {
        caller.check_edit(self.domain)?;
        let name = self.served().delete(&req)?;
        let idem = idempotency("delete", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        let who = caller.clone();
        let outcome = self
            .store
            .write(&name.id, idem, &caller.signature(), move |current| {
                let current = seen(current, &who, &full)?;
                check_etag(current, &etag)?;
                Ok(Plan::Delete)
            })
            .await?;
        Ok(outcome.replayed())
    }

    /// AddProgressUpdate: editors and admins; a reporter only for their own
    /// organization (`reporting_organization_id`).
    pub async fn add_progress_update(
        &self,
        caller: &Caller,
        req: AddProgressUpdateRequest,
    ) -> Result<Written> {
        let checked = self.served().add_progress_update(&req)?;
        let (name, mut update) = (checked.name, checked.update);
        let own =
            caller.reporting_org(self.domain) == Some(update.reporting_organization_id.as_str());
        if !(caller.may_edit(self.domain) || own) {
            return Err(caller.denied(Permission::Report, self.domain));
        }
        update.record_time = Some(dates::now());
        let idem = idempotency("progress", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        let who = caller.clone();
        let outcome = self
            .store
            .write(&name.id, idem, &caller.signature(), move |current| {
                let current = seen(current, &who, &full)?;
                check_etag(current, &etag)?;
                if current.progress_updates.len() >= rules::MAX_PROGRESS_UPDATES {
                    return Err(Error::FailedPrecondition(format!(
                        "the initiative has {} progress updates, the most one may keep",
                        rules::MAX_PROGRESS_UPDATES
                    )));
                }
                let mut record = current.clone();
                let mut update = update.clone();
                update.id = format!("p{}", record.progress_updates.len() + 1);
                record.progress_updates.push(update);
                Ok(Plan::Put {
                    record,
                    change_type: ChangeType::ProgressAdded,
                })
            })
            .await?;
        Written::from(outcome).seen_by(caller)
    }

    /// UpdateMilestone: editors and admins; a reporter on initiatives their
    /// organization takes part in.
    pub async fn update_milestone(
        &self,
        caller: &Caller,
        req: UpdateMilestoneRequest,
    ) -> Result<Written> {
        let editor = caller.may_edit(self.domain);
        let reporter_org = caller.reporting_org(self.domain).map(str::to_string);
        if !editor && reporter_org.is_none() {
            return Err(caller.denied(Permission::Report, self.domain));
        }
        let checked = self.served().update_milestone(&req)?;
        let (name, input, paths) = (checked.name, checked.input, checked.paths);
        let milestone_id = input.id.clone();
        let idem = idempotency("milestone", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        let (who, domain) = (caller.clone(), self.domain);
        let today = dates::today();
        let outcome = self
            .store
            .write(&name.id, idem, &caller.signature(), move |current| {
                let current = seen(current, &who, &full)?;
                if !editor && !takes_part(current, reporter_org.as_deref().unwrap_or_default()) {
                    return Err(who.denied(Permission::Report, domain));
                }
                let Some(index) = current.milestones.iter().position(|m| m.id == milestone_id)
                else {
                    return Err(Error::NotFound(format!(
                        "milestone `{milestone_id}` not found in `{full}`"
                    )));
                };
                let mut record = current.clone();
                let m = &mut record.milestones[index];
                let named = |f: &str| paths.iter().any(|p| p == "*" || p == f);
                if named("title") {
                    m.title = input.title.clone();
                }
                if named("due") {
                    m.due = input.due;
                }
                if named("status") {
                    m.status = input.status;
                }
                if named("date_met") {
                    m.date_met = input.date_met;
                }
                if named("evidence_links") {
                    m.evidence_links = input.evidence_links.clone();
                }
                rules::milestone_defaults(m);
                let mut v = Violations::default();
                if named("status") || named("date_met") {
                    rules::date_milestone(&mut v, "milestone", m, today);
                }
                validate::milestone(&mut v, "milestone", m);
                v.finish()?;
                check_etag(current, &etag)?;
                if record == *current {
                    return Ok(Plan::Unchanged(current.clone()));
                }
                Ok(Plan::Put {
                    record,
                    change_type: ChangeType::MilestoneUpdated,
                })
            })
            .await?;
        Written::from(outcome).seen_by(caller)
    }

    /// GetDomainSummary: any role; counts what the caller may see.
    pub async fn summary(
        &self,
        caller: &Caller,
        req: GetDomainSummaryRequest,
    ) -> Result<DomainSummary> {
        caller.check_read(self.domain)?;
        let checked = self.served().summary(&req)?;
        let store = self.store.clone();
        let cleared = caller.cleared() && !req.public_only;
        match (checked.known_on, checked.document) {
            // From the counters in memory: O(1) in the number of records,
            // answered in place (a hop to a blocking thread cost more than
            // the read).
            (None, None) => store.summary(checked.window, cleared),
            // Record by record.
            (known_on, document) => {
                blocking(move || {
                    store.summary_scan(checked.window, cleared, known_on, document.as_deref())
                })
                .await
            }
        }
    }

    /// ListHistory: any role; a record the caller may not see has no
    /// history for them, and revisions they may not see are left out.
    pub async fn history(
        &self,
        caller: &Caller,
        req: ListHistoryRequest,
    ) -> Result<ListHistoryResponse> {
        caller.check_read(self.domain)?;
        let checked = self.served().history(&req)?;
        let store = self.store.clone();
        let (id, size) = (checked.name.id.clone(), checked.page_size);
        let after = checked.after_revision.unwrap_or(0);
        let who = caller.clone();
        let page = blocking(move || {
            // A record the caller may not see, now or when it was deleted,
            // has no history for them.
            if store.latest_version(&id)?.is_some_and(|i| !who.may_see(&i)) {
                return Ok(Page::default());
            }
            store.history(&id, after, size, |c| {
                c.initiative.as_ref().is_some_and(|i| who.may_see(i))
            })
        })
        .await?;
        if page.items.is_empty() && checked.after_revision.is_none() {
            return Err(not_found(&req.name));
        }
        let next_page_token = match (page.more, page.items.last()) {
            (true, Some(last)) => pagination::encode(&PageToken {
                fingerprint: checked.fingerprint,
                last_revision: last.revision.unsigned_abs(),
                ..Default::default()
            }),
            _ => String::new(),
        };
        Ok(ListHistoryResponse {
            changes: page.items,
            next_page_token,
        })
    }

    /// WatchChanges: every durable change after the requested revision, then
    /// new ones as they become durable, until the caller goes or `shutdown`
    /// fires.
    pub fn watch(
        &self,
        caller: &Caller,
        req: WatchChangesRequest,
        shutdown: CancellationToken,
    ) -> Result<impl Stream<Item = Result<Change>> + Send + 'static> {
        caller.check_read(self.domain)?;
        let cursor = self.served().watch(&req)?;
        let permit = self.watches.open(&caller.sub)?;
        let (tx, rx) = mpsc::channel::<Result<Change>>(feed::READ_BATCH);
        // The stream's last word when the task ends it early.
        let (last_tx, last_rx) = tokio::sync::oneshot::channel::<Error>();
        // Subscribed before the backlog is read: nothing falls between.
        let changes = self.feed.subscribe();
        let stream = feed::Stream {
            store: self.store.clone(),
            caller: caller.clone(),
            cursor,
            tx,
            last: Some(last_tx),
            shutdown,
        };
        tokio::spawn(stream.run(changes));
        let last =
            futures::stream::once(last_rx).filter_map(|e| std::future::ready(e.ok().map(Err)));
        // The stream counts against the caps for as long as its caller holds
        // it (what it buffered included), not only while the task sends.
        Ok(ReceiverStream::new(rx).chain(last).map(move |c| {
            let _counted = &permit;
            c
        }))
    }
}

impl DomainCore {
    /// BackupStore: a consistent snapshot of the whole store, streamed in
    /// chunks as they are read (at most [`BACKUP_CHUNKS_AHEAD`] read ahead
    /// of the caller), while writes go on (see `cetrack_store::Snapshot`).
    /// A caller that goes away ends the read.
    pub async fn backup(
        &self,
        caller: &Caller,
        req: cetrack_contract::proto::BackupStoreRequest,
    ) -> Result<impl Stream<Item = Result<cetrack_contract::proto::BackupChunk>> + Send + 'static>
    {
        caller.check_admin(self.domain)?;
        self.served().backup(&req.parent)?;
        // Each backup holds a blocking thread (and what writers keep for
        // it) for as long as it streams.
        let permit = self.backups.clone().try_acquire_owned().map_err(|_| {
            Error::ResourceExhausted(format!(
                "the {} service is taking {MAX_BACKUPS} backups already; take this one when one of them has finished",
                self.domain
            ))
        })?;
        let store = self.store.clone();
        let snapshot = {
            let store = store.clone();
            blocking(move || store.snapshot()).await?
        };
        let (tx, rx) = mpsc::channel(BACKUP_CHUNKS_AHEAD);
        let runtime = tokio::runtime::Handle::current();
        let revision = snapshot.revision();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let sent = cetrack_store::backup::stream_chunks(&store, &snapshot, |chunk| {
                // The trailer vouches for the backup: only once every write
                // it holds is durable (a write committed but not yet flushed
                // may still fail, and its caller be told so).
                if chunk.trailer.is_some() {
                    runtime.block_on(store.wait_durable(revision))?;
                }
                // A caller that takes nothing for BACKUP_STALL ends the backup
                // (the snapshot, and what writers keep for it, is released).
                match runtime.block_on(tokio::time::timeout(BACKUP_STALL, tx.send(Ok(chunk)))) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Error::Aborted("the caller went away".into())),
                    Err(_) => Err(Error::Aborted(format!(
                        "the caller took no chunk for {} s; take the backup again",
                        BACKUP_STALL.as_secs()
                    ))),
                }
            });
            drop(snapshot);
            if let Err(e) = sent {
                // Told to a caller still there (one that went away or stalls
                // hears nothing more).
                let _ = runtime.block_on(tokio::time::timeout(BACKUP_STALL, tx.send(Err(e))));
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// Most backups a domain service streams at once; one more is
/// RESOURCE_EXHAUSTED. Each holds one of the server's blocking threads (see
/// `cetrack_server::run::MAX_BLOCKING_THREADS`) while it streams, up to
/// [`BACKUP_STALL`] per chunk its caller does not take: a few stalled
/// backups must not leave reads without one.
pub const MAX_BACKUPS: usize = 4;

/// Chunks of a backup (about 1 MiB each) read ahead of its caller.
pub const BACKUP_CHUNKS_AHEAD: usize = 2;

/// How long a backup waits for its caller to take a chunk before it ends.
pub const BACKUP_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// The current version of a record as `caller` sees it: a record they may
/// not see does not exist for them (NOT_FOUND, like a missing one).
fn seen<'a>(
    current: Option<&'a Initiative>,
    caller: &Caller,
    name: &str,
) -> Result<&'a Initiative> {
    current
        .filter(|c| caller.may_see(c))
        .ok_or_else(|| not_found(name))
}

/// Whether `org` takes part in `init`.
fn takes_part(init: &Initiative, org: &str) -> bool {
    init.participants
        .iter()
        .any(|p| p.organization.as_ref().is_some_and(|o| o.id == org))
}

/// Whether `merged` differs from `current` only in the status and note of
/// `org`'s own participations (what a reporter may change).
fn only_own_participation(current: &Initiative, merged: &Initiative, org: &str) -> bool {
    let blank = |init: &Initiative| {
        let mut i = init.clone();
        for p in &mut i.participants {
            if p.organization.as_ref().is_some_and(|o| o.id == org) {
                p.status = 0;
                p.note.clear();
            }
        }
        i
    };
    blank(current) == blank(merged)
}

/// Shared handle to a domain's logic.
pub type SharedCore = Arc<DomainCore>;
