//! The behaviour of a domain service, independent of gRPC: it checks requests,
//! applies the domain rules and asks the store to write.

use std::sync::Arc;

use futures::Stream;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::dates;
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::names::{check_resource_id, parse_parent, InitiativeName};
use crate::pagination::{self, PageToken};
use crate::proto::{
    AddProgressUpdateRequest, Change, ChangeType, CreateInitiativeRequest, DeleteInitiativeRequest,
    DomainSummary, GetDomainSummaryRequest, GetInitiativeRequest, Initiative, InitiativeFilter,
    ListHistoryRequest, ListHistoryResponse, ListInitiativesRequest, ListInitiativesResponse,
    UpdateInitiativeRequest, UpdateMilestoneRequest, WatchChangesRequest,
};
use crate::rules::{self, Filter};
use crate::store::{Idempotency, Plan, Store};
use crate::summary::SummaryWindow;
use crate::validate::{self, Violations};

/// Default "due soon" window of a summary, in days.
pub const DEFAULT_DUE_WITHIN_DAYS: i32 = 90;
/// Longest "due soon" window, in days.
pub const MAX_DUE_WITHIN_DAYS: i32 = 3_660;
/// How many changes a watch reads from the store at a time.
const WATCH_BATCH: usize = 256;

/// One domain's service logic over its store.
#[derive(Debug, Clone)]
pub struct DomainCore {
    domain: Domain,
    store: Store,
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("read task failed: {e}")))?
}

impl DomainCore {
    /// The logic of `domain` over `store`.
    pub fn new(domain: Domain, store: Store) -> Self {
        Self { domain, store }
    }

    /// The domain served.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks that `parent` names this domain.
    fn parent(&self, v: &mut Violations, parent: &str, field: &str) -> Result<()> {
        match parse_parent(parent, field) {
            Err(e) => v.extend([e]),
            Ok(d) if d != self.domain => {
                return Err(Error::NotFound(format!(
                    "`{parent}` is not served here: this is the {} service",
                    self.domain
                )))
            }
            Ok(_) => {}
        }
        Ok(())
    }

    /// Parses an initiative name of this domain.
    fn name(&self, v: &mut Violations, name: &str, field: &str) -> Result<Option<InitiativeName>> {
        match InitiativeName::parse(name, field) {
            Err(e) => {
                v.extend([e]);
                Ok(None)
            }
            Ok(n) if n.domain != self.domain => Err(Error::NotFound(format!(
                "`{name}` is not served here: this is the {} service",
                self.domain
            ))),
            Ok(n) => Ok(Some(n)),
        }
    }

    /// CreateInitiative.
    pub async fn create(&self, req: CreateInitiativeRequest) -> Result<Initiative> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let id = if req.initiative_id.is_empty() {
            format!("i{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
        } else {
            if let Err(e) = check_resource_id(&req.initiative_id) {
                v.add("initiative_id", e);
            }
            req.initiative_id.clone()
        };
        let name = InitiativeName::new(self.domain, id.clone()).to_string();
        match &req.initiative {
            None => v.add("initiative", "required"),
            Some(init) => {
                validate::initiative(&mut v, "initiative", init, self.domain, Some(&name))
            }
        }
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let mut record = req.initiative.clone().unwrap_or_default();
        record.name = name.clone();
        record.domain = self.domain.to_proto() as i32;
        record.progress_updates.clear();
        record.create_time = None;
        record.update_time = None;
        record.revision = 0;
        record.etag.clear();
        rules::apply_defaults(&mut record);
        let idem = idempotency("create", &req.request_id, &req, |r| r.request_id.clear());
        let outcome = self
            .store
            .write(&id, idem, &req.reporter, move |current| match current {
                Some(_) => Err(Error::AlreadyExists(format!(
                    "initiative `{name}` already exists"
                ))),
                None => Ok(Plan::Put {
                    record: record.clone(),
                    change_type: ChangeType::Created,
                }),
            })
            .await?;
        Ok(outcome.into_initiative())
    }

    /// GetInitiative.
    pub async fn get(&self, req: GetInitiativeRequest) -> Result<Initiative> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid("name", "required"));
        };
        let store = self.store.clone();
        let id = name.id.clone();
        blocking(move || store.get(&id))
            .await?
            .ok_or_else(|| not_found(&req.name))
    }

    /// Checks a filter and makes it ready to apply.
    pub fn filter(v: &mut Violations, f: &InitiativeFilter, field: &str) -> Filter {
        let mut out = Filter::default();
        for (i, s) in f.statuses.iter().enumerate() {
            v.enum_value::<crate::proto::LifecycleStatus>(
                &format!("{field}.statuses[{i}]"),
                *s,
                false,
            );
        }
        out.statuses = f.statuses.clone();
        for (i, s) in f.instruments.iter().enumerate() {
            v.enum_value::<crate::proto::Instrument>(
                &format!("{field}.instruments[{i}]"),
                *s,
                false,
            );
        }
        out.instruments = f.instruments.clone();
        if !f.organization_id.is_empty() {
            v.slug(&format!("{field}.organization_id"), &f.organization_id, 2);
            out.organization_id = Some(f.organization_id.clone());
        }
        if !f.country_code.is_empty() {
            v.country(&format!("{field}.country_code"), &f.country_code, true);
            out.country_code = Some(f.country_code.clone());
        }
        if !f.topic.is_empty() {
            v.slug(&format!("{field}.topic"), &f.topic, 1);
            out.topic = Some(f.topic.clone());
        }
        let day = |v: &mut Violations, d: &Option<crate::proto::CalendarDate>, name: &str| {
            d.as_ref()
                .and_then(|d| match dates::calendar(d, &format!("{field}.{name}")) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        v.extend([e]);
                        None
                    }
                })
        };
        out.due_after = day(v, &f.due_after, "due_after");
        out.due_before = day(v, &f.due_before, "due_before");
        if let (Some(a), Some(b)) = (out.due_after, out.due_before) {
            if b < a {
                v.add(
                    format!("{field}.due_before"),
                    "must not be before due_after",
                );
            }
        }
        out.as_of = day(v, &f.as_of, "as_of");
        out.overdue_only = f.overdue_only;
        v.text(&format!("{field}.text"), &f.text, false, 200);
        if !f.text.trim().is_empty() {
            out.text = Some(f.text.trim().to_lowercase());
        }
        out
    }

    /// ListInitiatives.
    pub async fn list(&self, req: ListInitiativesRequest) -> Result<ListInitiativesResponse> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let size = pagination::page_size(req.page_size, "page_size").map_err(|e| v.extend([e]));
        let filter_msg = req.filter.clone().unwrap_or_default();
        let filter = Self::filter(&mut v, &filter_msg, "filter");
        let fp = pagination::list_fingerprint(&req.parent, &filter_msg);
        let token =
            pagination::decode(&req.page_token, fp, "page_token").map_err(|e| v.extend([e]));
        v.finish()?;
        let (Ok(size), Ok(token)) = (size, token) else {
            return Err(Error::invalid("page_size", "invalid"));
        };
        let store = self.store.clone();
        let after = token.map(|t| t.last_id);
        let page = blocking(move || store.list(&filter, after.as_deref(), size)).await?;
        let next_page_token = match (page.more, page.items.last()) {
            (true, Some(last)) => pagination::encode(&PageToken {
                fingerprint: fp,
                last_id: InitiativeName::parse(&last.name, "name")
                    .map(|n| n.id)
                    .unwrap_or_default(),
                ..Default::default()
            }),
            _ => String::new(),
        };
        Ok(ListInitiativesResponse {
            initiatives: page.items,
            next_page_token,
        })
    }

    /// UpdateInitiative.
    pub async fn update(&self, req: UpdateInitiativeRequest) -> Result<Initiative> {
        let mut v = Violations::default();
        let Some(input) = req.initiative.clone() else {
            v.add("initiative", "required");
            return Err(Error::InvalidArgument(v.0));
        };
        let name = self.name(&mut v, &input.name, "initiative.name")?;
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        v.extend(rules::check_mask(
            &paths,
            rules::WRITABLE_FIELDS,
            rules::OUTPUT_ONLY_FIELDS,
            "update_mask",
        ));
        // The new values of the masked fields are checked now, so that a
        // request with a bad mask and bad values hears of both at once; the
        // merged record is checked again against the stored one below.
        let masked = |field: &str| {
            paths.iter().any(|p| {
                p == "*"
                    || field == format!("initiative.{p}")
                    || field.starts_with(&format!("initiative.{p}."))
                    || field.starts_with(&format!("initiative.{p}["))
            })
        };
        let mut values = Violations::default();
        validate::initiative(
            &mut values,
            "initiative",
            &input,
            self.domain,
            Some(&input.name),
        );
        v.extend(values.0.into_iter().filter(|x| masked(&x.field)));
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid("initiative.name", "required"));
        };
        let domain = self.domain;
        let idem = idempotency("update", &req.request_id, &req, |r| r.request_id.clear());
        let full_name = name.to_string();
        let outcome = self
            .store
            .write(&name.id, idem, &req.reporter, move |current| {
                let current = current.ok_or_else(|| not_found(&full_name))?;
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
                rules::check_transition(current.status, merged.status)?;
                if rules::changed_fields(Some(current), &merged).is_empty() {
                    return Ok(Plan::Unchanged(current.clone()));
                }
                Ok(Plan::Put {
                    record: merged,
                    change_type: ChangeType::Updated,
                })
            })
            .await?;
        Ok(outcome.into_initiative())
    }

    /// DeleteInitiative.
    pub async fn delete(&self, req: DeleteInitiativeRequest) -> Result<()> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid("name", "required"));
        };
        let idem = idempotency("delete", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        self.store
            .write(&name.id, idem, &req.reporter, move |current| {
                let current = current.ok_or_else(|| not_found(&full))?;
                check_etag(current, &etag)?;
                Ok(Plan::Delete)
            })
            .await?;
        Ok(())
    }

    /// AddProgressUpdate.
    pub async fn add_progress_update(&self, req: AddProgressUpdateRequest) -> Result<Initiative> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        match &req.progress_update {
            None => v.add("progress_update", "required"),
            Some(p) => validate::progress_update(&mut v, "progress_update", p),
        }
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let (Some(name), Some(mut update)) = (name, req.progress_update.clone()) else {
            return Err(Error::invalid("name", "required"));
        };
        update.record_time = Some(crate::store::now());
        let reporter = if req.reporter.is_empty() {
            update.reporting_organization_id.clone()
        } else {
            req.reporter.clone()
        };
        let idem = idempotency("progress", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        let outcome = self
            .store
            .write(&name.id, idem, &reporter, move |current| {
                let current = current.ok_or_else(|| not_found(&full))?;
                check_etag(current, &etag)?;
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
        Ok(outcome.into_initiative())
    }

    /// UpdateMilestone.
    pub async fn update_milestone(&self, req: UpdateMilestoneRequest) -> Result<Initiative> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        let milestone_id = match &req.milestone {
            None => {
                v.add("milestone", "required");
                String::new()
            }
            Some(m) => {
                v.slug("milestone.id", &m.id, 1);
                m.id.clone()
            }
        };
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        v.extend(rules::check_mask(
            &paths,
            rules::MILESTONE_FIELDS,
            &["id"],
            "update_mask",
        ));
        validate::write_meta(&mut v, &req.request_id, &req.reporter);
        v.finish()?;
        let (Some(name), Some(input)) = (name, req.milestone.clone()) else {
            return Err(Error::invalid("name", "required"));
        };
        let idem = idempotency("milestone", &req.request_id, &req, |r| r.request_id.clear());
        let etag = req.etag.clone();
        let full = req.name.clone();
        let outcome = self
            .store
            .write(&name.id, idem, &req.reporter, move |current| {
                let current = current.ok_or_else(|| not_found(&full))?;
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
        Ok(outcome.into_initiative())
    }

    /// GetDomainSummary.
    pub async fn summary(&self, req: GetDomainSummaryRequest) -> Result<DomainSummary> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        let due_within_days = match req.due_within_days {
            0 => DEFAULT_DUE_WITHIN_DAYS,
            n if !(0..=MAX_DUE_WITHIN_DAYS).contains(&n) => {
                v.add(
                    "due_within_days",
                    format!("must be 0 to {MAX_DUE_WITHIN_DAYS}, is {n}"),
                );
                0
            }
            n => n,
        };
        let as_of = match &req.as_of {
            None => dates::today(),
            Some(d) => dates::calendar(d, "as_of").unwrap_or_else(|e| {
                v.extend([e]);
                dates::today()
            }),
        };
        v.finish()?;
        let store = self.store.clone();
        blocking(move || {
            store.summary(SummaryWindow {
                as_of,
                due_within_days,
            })
        })
        .await
    }

    /// ListHistory.
    pub async fn history(&self, req: ListHistoryRequest) -> Result<ListHistoryResponse> {
        let mut v = Violations::default();
        let name = self.name(&mut v, &req.name, "name")?;
        let size = pagination::page_size(req.page_size, "page_size").map_err(|e| v.extend([e]));
        let fp = pagination::fingerprint(&[req.name.as_bytes()]);
        let token =
            pagination::decode(&req.page_token, fp, "page_token").map_err(|e| v.extend([e]));
        v.finish()?;
        let (Some(name), Ok(size), Ok(token)) = (name, size, token) else {
            return Err(Error::invalid("name", "required"));
        };
        let after = token.as_ref().map(|t| t.last_revision).unwrap_or(0);
        let store = self.store.clone();
        let id = name.id.clone();
        let page = blocking(move || store.history(&id, after, size)).await?;
        if page.items.is_empty() && token.is_none() {
            return Err(not_found(&req.name));
        }
        let next_page_token = match (page.more, page.items.last()) {
            (true, Some(last)) => pagination::encode(&PageToken {
                fingerprint: fp,
                last_revision: last.revision as u64,
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
        req: WatchChangesRequest,
        shutdown: CancellationToken,
    ) -> Result<impl Stream<Item = Result<Change>> + Send + 'static> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        if req.after_revision < 0 {
            v.add("after_revision", "must not be negative");
        }
        v.finish()?;
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel::<Result<Change>>(WATCH_BATCH);
        let mut durable = store.subscribe();
        let mut cursor = req.after_revision as u64;
        tokio::spawn(async move {
            loop {
                durable.borrow_and_update();
                let s = store.clone();
                let batch = match blocking(move || s.changes_after(cursor, WATCH_BATCH)).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    tokio::select! {
                        changed = durable.changed() => if changed.is_err() { return },
                        _ = shutdown.cancelled() => return,
                        _ = tx.closed() => return,
                    }
                    continue;
                }
                for change in batch {
                    cursor = change.revision as u64;
                    tokio::select! {
                        sent = tx.send(Ok(change)) => if sent.is_err() { return },
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

impl DomainCore {
    /// BackupStore: a consistent snapshot of the whole store, in chunks.
    pub async fn backup(
        &self,
        req: crate::proto::BackupStoreRequest,
    ) -> Result<Vec<crate::proto::BackupChunk>> {
        let mut v = Violations::default();
        self.parent(&mut v, &req.parent, "parent")?;
        v.finish()?;
        let store = self.store.clone();
        blocking(move || crate::backup::snapshot_chunks(&store)).await
    }
}

/// Shared handle to a domain's logic.
pub type SharedCore = Arc<DomainCore>;
