//! `cetrack export` and `cetrack import`: every initiative as JSON Lines
//! (proto3 JSON, one `Initiative` per line), through the public gRPC API.

use std::io::{BufRead, Write};

use anyhow::Context;
use cetrack_contract::names::InitiativeName;
use cetrack_contract::pagination::fingerprint;
use cetrack_contract::proto::{
    AddProgressUpdateRequest, CreateInitiativeRequest, GetInitiativeRequest, Initiative,
    ListInitiativesRequest, UpdateInitiativeRequest,
};
use cetrack_contract::Domain;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Endpoints;
use crate::error::StatusError;

fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    let b = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        b.set_draw_target(ProgressDrawTarget::stderr());
    } else {
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed}") {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

/// Writes every initiative of `domains` to `out`; returns how many.
pub(crate) async fn export(
    endpoints: &Endpoints,
    domains: &[Domain],
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let progress = bar(None, "exporting");
    let mut n = 0;
    for d in domains {
        let mut client = endpoints.domain(*d).await?;
        let mut token = String::new();
        loop {
            let page = client
                .list_initiatives(ListInitiativesRequest {
                    parent: d.parent(),
                    page_size: 1000,
                    page_token: token,
                    filter: None,
                })
                .await
                .map_err(StatusError)?
                .into_inner();
            for i in &page.initiatives {
                writeln!(out, "{}", serde_json::to_string(i)?)?;
                n += 1;
                progress.inc(1);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    out.flush()?;
    progress.finish_and_clear();
    Ok(n)
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Imported {
    /// Initiatives created.
    pub created: usize,
    /// Initiatives that were there already (left as they are).
    pub present: usize,
    /// Of the created ones, those imported before and deleted since (their
    /// first import's request id answered with a replay).
    pub recreated: usize,
}

/// One line of an import: an exported `Initiative`, or a
/// `CreateInitiativeRequest` (the seed format).
fn parse_line(line: &str) -> anyhow::Result<(CreateInitiativeRequest, Initiative)> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    if value.get("initiative").is_some() {
        let req: CreateInitiativeRequest = serde_json::from_value(value)?;
        let init = req.initiative.clone().unwrap_or_default();
        return Ok((req, init));
    }
    let init: Initiative = serde_json::from_value(value)?;
    let name = InitiativeName::parse(&init.name, "name")
        .map_err(|v| anyhow::anyhow!("{}: {}", v.field, v.description))?;
    // Created with its first status, from when it took effect; the later
    // ones are replayed after it (see `import`), so that the status history
    // comes across.
    let mut first = init.clone();
    if let Some(h) = init.status_history.first() {
        first.status = h.status;
        first.status_date = h.effective;
    }
    let req = CreateInitiativeRequest {
        parent: name.domain.parent(),
        initiative_id: name.id,
        initiative: Some(first),
        request_id: format!("import-{:016x}", fingerprint(&[init.name.as_bytes()])),
        reporter: "import".into(),
    };
    Ok((req, init))
}

/// Creates every initiative of the JSON Lines `input` that is not there yet,
/// with its progress updates in order. Existing initiatives are left alone.
pub(crate) async fn import(
    endpoints: &Endpoints,
    input: &mut dyn BufRead,
) -> anyhow::Result<Imported> {
    let lines: Vec<String> = input.lines().collect::<Result<_, _>>()?;
    let progress = bar(Some(lines.len() as u64), "importing");
    let mut done = Imported::default();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (req, init) = parse_line(line).with_context(|| format!("line {}", n + 1))?;
        let domain = cetrack_contract::names::parse_parent(&req.parent, "parent")
            .map_err(|v| anyhow::anyhow!("line {}: {}: {}", n + 1, v.field, v.description))?;
        let name = format!("{}/initiatives/{}", req.parent, req.initiative_id);
        let mut client = endpoints.domain(domain).await?;
        match client
            .get_initiative(GetInitiativeRequest { name: name.clone() })
            .await
        {
            Ok(_) => {
                done.present += 1;
                progress.inc(1);
                continue;
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => {
                return Err(StatusError(s))
                    .with_context(|| format!("line {}: looking for {name}", n + 1))
            }
        }
        let answer = client
            .create_initiative(req.clone())
            .await
            .map_err(StatusError)
            .with_context(|| format!("line {}: creating {name}", n + 1))?;
        // A replayed answer: this line was imported before under the same
        // request id and the record has been deleted since (it was absent
        // above). Import it anew, under request ids of its own.
        let mut suffix = String::new();
        if answer
            .metadata()
            .contains_key(cetrack_contract::headers::REPLAYED)
        {
            // Short, so that every request id stays within its cap.
            suffix = format!("-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let again = CreateInitiativeRequest {
                request_id: format!("import-{:016x}{suffix}", fingerprint(&[name.as_bytes()])),
                ..req
            };
            match client.create_initiative(again).await {
                Ok(_) => done.recreated += 1,
                // Created meanwhile by someone else: there now.
                Err(s) if s.code() == tonic::Code::AlreadyExists => {
                    done.present += 1;
                    progress.inc(1);
                    continue;
                }
                Err(s) => {
                    return Err(StatusError(s))
                        .with_context(|| format!("line {}: creating {name} again", n + 1))
                }
            }
        }
        for p in &init.progress_updates {
            client
                .add_progress_update(AddProgressUpdateRequest {
                    name: name.clone(),
                    progress_update: Some(p.clone()),
                    etag: String::new(),
                    request_id: format!(
                        "import-{:016x}-{}{suffix}",
                        fingerprint(&[name.as_bytes()]),
                        p.id
                    ),
                    reporter: "import".into(),
                })
                .await
                .map_err(StatusError)
                .with_context(|| format!("line {}: progress update {} of {name}", n + 1, p.id))?;
        }
        // The later statuses, each from when it took effect.
        for (k, h) in init.status_history.iter().enumerate().skip(1) {
            client
                .update_initiative(UpdateInitiativeRequest {
                    initiative: Some(Initiative {
                        name: name.clone(),
                        status: h.status,
                        status_date: h.effective,
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["status".into(), "status_date".into()],
                    }),
                    request_id: format!(
                        "import-{:016x}-s{k}{suffix}",
                        fingerprint(&[name.as_bytes()])
                    ),
                    reporter: "import".into(),
                })
                .await
                .map_err(StatusError)
                .with_context(|| format!("line {}: status {k} of {name}", n + 1))?;
        }
        done.created += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(done)
}
