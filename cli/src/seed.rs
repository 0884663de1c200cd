//! The dialogue record shipped with cetrack: every commitment of the
//! 2023-12-08 U.S.-ROK joint fact sheet, loaded through the public gRPC API.

use anyhow::Context;
use cetrack_contract::names::parse_parent;
use cetrack_contract::proto::CreateInitiativeRequest;

use crate::client::Endpoints;

/// The data set, one CreateInitiativeRequest per line (proto3 JSON).
pub(crate) const FACT_SHEET_2023_12_08: &str = include_str!("../data/us-rok-cet-2023-12-08.jsonl");

/// The requests of a JSON Lines data set.
pub(crate) fn requests(text: &str) -> anyhow::Result<Vec<CreateInitiativeRequest>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).with_context(|| format!("line {}", n + 1)))
        .collect()
}

/// What a load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// Initiatives created now.
    pub created: usize,
    /// Initiatives that were there already.
    pub present: usize,
    /// Initiatives seeded before and deleted since: their request id
    /// answered with a replay, and they stay deleted (an operator deleted
    /// them; seeding again does not bring them back).
    pub deleted_since: usize,
}

/// Creates every initiative of the data set that is not there yet. Each
/// request carries its request id, so loading twice changes nothing.
pub(crate) async fn load(endpoints: &Endpoints, text: &str) -> anyhow::Result<Loaded> {
    let mut loaded = Loaded::default();
    for req in requests(text)? {
        let domain = parse_parent(&req.parent, "parent")
            .map_err(|v| anyhow::anyhow!("{}: {}", v.field, v.description))?;
        let mut client = endpoints.domain(domain).await?;
        let name = format!("{}/initiatives/{}", req.parent, req.initiative_id);
        let before = client
            .get_initiative(cetrack_contract::proto::GetInitiativeRequest { name: name.clone() })
            .await;
        if before.is_ok() {
            loaded.present += 1;
            continue;
        }
        match client.create_initiative(req).await {
            Ok(answer)
                if answer
                    .metadata()
                    .contains_key(cetrack_contract::headers::REPLAYED) =>
            {
                loaded.deleted_since += 1
            }
            Ok(_) => loaded.created += 1,
            Err(s) if s.code() == tonic::Code::AlreadyExists => loaded.present += 1,
            // The seed's request id was used by an earlier version of the
            // seed data for this record, which has been deleted since.
            Err(s)
                if s.code() == tonic::Code::FailedPrecondition
                    && s.message().contains("request_id") =>
            {
                loaded.deleted_since += 1
            }
            Err(s) => {
                return Err(crate::error::StatusError(s))
                    .with_context(|| format!("creating {name}"))
            }
        }
    }
    Ok(loaded)
}
