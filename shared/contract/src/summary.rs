//! The domain summary as counters. Every initiative contributes a small set of
//! counter increments; a write applies the difference between the old and the
//! new version, so reading a summary costs the number of distinct counters
//! (statuses, instruments, days, currencies, organizations), never the number
//! of initiatives.
//!
//! Counters answer for any "as of" day (valid time, see [`valid_time`]): the
//! plain counters hold each initiative as it stands after all its dated
//! facts, and dated counters (`~/` + day + counter) hold how each counter
//! moved on the day a fact took effect. The counters of day D are the plain
//! ones minus every move dated after D: for today that is nothing to
//! subtract unless a fact is dated in the future, and for a past day the
//! cost is the number of moves since, never the number of initiatives.
//!
//! [`valid_time`]: crate::valid_time

use std::collections::BTreeMap;

use time::Date;

use crate::dates;
use crate::domain::Domain;
use crate::proto::{
    DomainSummary, FundingTotal, Initiative, InstrumentCount, MilestoneCounts, Money,
    OrganizationCount, StatusCount,
};
use crate::rules;
use crate::valid_time;

const NANOS: i128 = 1_000_000_000;

/// Counter keys, as stored.
mod key {
    pub(super) const COUNT: &[u8] = b"n";
    pub(super) const STATUS: &[u8] = b"s/";
    pub(super) const INSTRUMENT: &[u8] = b"i/";
    pub(super) const MILESTONES: &[u8] = b"m/total";
    pub(super) const MET: &[u8] = b"m/met";
    pub(super) const MILESTONE_DUE: &[u8] = b"md/";
    pub(super) const PLANNED_END: &[u8] = b"pe/";
    pub(super) const FUNDING_COUNT: &[u8] = b"fc/";
    pub(super) const FUNDING_SUM: &[u8] = b"fs/";
    pub(super) const ORGANIZATION: &[u8] = b"o/";
    /// Dated moves: `~/` + day + counter key. Sorts after every plain key.
    pub(super) const DATED: &[u8] = b"~/";
    /// The first key after every dated move.
    pub(super) const DATED_END: &[u8] = b"~0";
    /// The first key after every plain counter.
    pub(super) const PLAIN_END: &[u8] = b"~";
}

/// The key of the counter of initiatives.
pub const INITIATIVE_COUNT_KEY: &[u8] = key::COUNT;

fn with(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(rest);
    k
}

fn day(prefix: &[u8], d: Date) -> Vec<u8> {
    with(prefix, &(dates::day_key(d) as u32).to_be_bytes())
}

fn funding_key(prefix: &[u8], currency: &str, qualifier: i32) -> Vec<u8> {
    let mut k = with(prefix, currency.as_bytes());
    k.push(b'/');
    k.extend_from_slice(&qualifier.to_be_bytes());
    k
}

/// The counter increments one initiative contributes.
pub fn contributions(init: &Initiative) -> BTreeMap<Vec<u8>, i128> {
    let mut c: BTreeMap<Vec<u8>, i128> = BTreeMap::new();
    let mut add = |k: Vec<u8>, n: i128| *c.entry(k).or_default() += n;
    add(key::COUNT.to_vec(), 1);
    add(with(key::STATUS, &init.status.to_be_bytes()), 1);
    add(with(key::INSTRUMENT, &init.instrument.to_be_bytes()), 1);
    add(key::MILESTONES.to_vec(), init.milestones.len() as i128);
    add(
        key::MET.to_vec(),
        init.milestones
            .iter()
            .filter(|m| rules::milestone_met(m))
            .count() as i128,
    );
    if rules::is_open(init) {
        for due in init.milestones.iter().filter_map(rules::open_milestone_due) {
            add(day(key::MILESTONE_DUE, due), 1);
        }
    }
    if let Some(end) = rules::open_planned_end(init) {
        add(day(key::PLANNED_END, end), 1);
    }
    for f in &init.funding {
        if let Some(m) = &f.amount {
            add(
                funding_key(key::FUNDING_COUNT, &m.currency_code, f.qualifier),
                1,
            );
            add(
                funding_key(key::FUNDING_SUM, &m.currency_code, f.qualifier),
                m.units as i128 * NANOS + m.nanos as i128,
            );
        }
    }
    for p in &init.participants {
        if let Some(o) = &p.organization {
            add(with(key::ORGANIZATION, o.id.as_bytes()), 1);
        }
    }
    c.retain(|_, v| *v != 0);
    c
}

/// The change of every counter when `old` becomes `new`.
pub fn delta(old: Option<&Initiative>, new: Option<&Initiative>) -> BTreeMap<Vec<u8>, i128> {
    let mut d = new.map(contributions).unwrap_or_default();
    for (k, v) in old.map(contributions).unwrap_or_default() {
        *d.entry(k).or_default() -= v;
    }
    d.retain(|_, v| *v != 0);
    d
}

/// What of an initiative the counters look at (no texts, links or progress),
/// so that projecting it on many days stays cheap.
fn counted_part(init: &Initiative) -> Initiative {
    Initiative {
        status: init.status,
        status_date: init.status_date,
        status_history: init.status_history.clone(),
        instrument: init.instrument,
        planned_end: init.planned_end,
        milestones: init
            .milestones
            .iter()
            .map(|m| crate::proto::Milestone {
                status: m.status,
                due: m.due,
                date_met: m.date_met,
                ..Default::default()
            })
            .collect(),
        funding: init
            .funding
            .iter()
            .map(|f| crate::proto::FundingCommitment {
                amount: f.amount.clone(),
                qualifier: f.qualifier,
                date: f.date,
                ..Default::default()
            })
            .collect(),
        participants: init
            .participants
            .iter()
            .map(|p| crate::proto::Participant {
                organization: p.organization.as_ref().map(|o| crate::proto::Organization {
                    id: o.id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The counter increments one initiative contributes over time: the plain
/// counters as it stands after all its dated facts, and for each day a fact
/// takes effect the dated move of every counter that day.
pub fn dated_contributions(init: &Initiative) -> BTreeMap<Vec<u8>, i128> {
    let part = counted_part(init);
    let mut out = valid_time::at_the_end(&part)
        .map(|i| contributions(&i))
        .unwrap_or_default();
    let days = valid_time::event_days(&part);
    let Some(first) = days.first() else {
        return out;
    };
    let mut before = first
        .previous_day()
        .and_then(|d| valid_time::on_day(&part, d));
    for d in days {
        let now = valid_time::on_day(&part, d);
        for (k, v) in delta(before.as_ref(), now.as_ref()) {
            let mut dated = day(key::DATED, d);
            dated.extend_from_slice(&k);
            *out.entry(dated).or_default() += v;
        }
        before = now;
    }
    out.retain(|_, v| *v != 0);
    out
}

/// The stored-key ranges (in one visibility's set) a summary of `as_of`
/// reads: the plain counters, and the dated moves after that day.
pub fn ranges_for(vis: Visibility, as_of: Date) -> [(Vec<u8>, Vec<u8>); 2] {
    let after = as_of.next_day().unwrap_or(as_of);
    [
        (vis.key(b""), vis.key(key::PLAIN_END)),
        (vis.key(&day(key::DATED, after)), vis.key(key::DATED_END)),
    ]
}

/// The counters of one day from the stored ones a caller sees, read from
/// the two [`ranges_for`] that day (keys with their visibility prefix): the
/// plain counters minus the moves dated after the day.
pub fn counters_on(
    plain: impl IntoIterator<Item = (Vec<u8>, i128)>,
    later: impl IntoIterator<Item = (Vec<u8>, i128)>,
) -> BTreeMap<Vec<u8>, i128> {
    let mut out: BTreeMap<Vec<u8>, i128> = BTreeMap::new();
    for (k, v) in plain {
        if let Some((_, key)) = Visibility::split(&k) {
            *out.entry(key.to_vec()).or_default() += v;
        }
    }
    for (k, v) in later {
        if let Some((_, key)) = Visibility::split(&k) {
            // `~/` + 4 bytes of day + the counter's key.
            if let Some(counter) = key.get(key::DATED.len() + 4..) {
                *out.entry(counter.to_vec()).or_default() -= v;
            }
        }
    }
    out.retain(|_, v| *v != 0);
    out
}

/// Whose counters a stored counter belongs to: the public records' or the
/// restricted records'. The store keeps both sets, so that a summary for a
/// caller without clearance reads only the public set, in O(1) of the data
/// size like any other summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Counters of records anyone may see.
    Public,
    /// Counters of records marked RESTRICTED.
    Restricted,
}

impl Visibility {
    /// Both, public first.
    pub const ALL: [Visibility; 2] = [Visibility::Public, Visibility::Restricted];

    /// The set `init` is counted in.
    pub fn of(init: &Initiative) -> Self {
        if crate::auth::is_restricted(init) {
            Visibility::Restricted
        } else {
            Visibility::Public
        }
    }

    /// The sets a caller sees: public only, or both when cleared.
    pub fn seen(cleared: bool) -> &'static [Visibility] {
        if cleared {
            &Visibility::ALL
        } else {
            &Visibility::ALL[..1]
        }
    }

    fn prefix(self) -> u8 {
        match self {
            Visibility::Public => b'p',
            Visibility::Restricted => b'r',
        }
    }

    /// `key` as stored in this set.
    pub fn key(self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(self.prefix());
        k.extend_from_slice(key);
        k
    }

    /// The set and the counter key of a stored key.
    pub fn split(stored: &[u8]) -> Option<(Visibility, &[u8])> {
        let (first, rest) = stored.split_first()?;
        Visibility::ALL
            .into_iter()
            .find(|v| v.prefix() == *first)
            .map(|v| (v, rest))
    }
}

/// The change of every stored counter (keys prefixed by their
/// [`Visibility`]) when `old` becomes `new`; a record whose marking changes
/// moves from one set to the other.
pub fn visible_delta(
    old: Option<&Initiative>,
    new: Option<&Initiative>,
) -> BTreeMap<Vec<u8>, i128> {
    let mut d: BTreeMap<Vec<u8>, i128> = BTreeMap::new();
    if let Some(n) = new {
        let v = Visibility::of(n);
        for (k, c) in dated_contributions(n) {
            *d.entry(v.key(&k)).or_default() += c;
        }
    }
    if let Some(o) = old {
        let v = Visibility::of(o);
        for (k, c) in dated_contributions(o) {
            *d.entry(v.key(&k)).or_default() -= c;
        }
    }
    d.retain(|_, c| *c != 0);
    d
}

/// The name and country last recorded for an organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrganizationLabel {
    /// Its name.
    pub name: String,
    /// Its country.
    pub country_code: String,
}

/// The organizations an initiative names, with their labels.
pub fn organization_labels(init: &Initiative) -> Vec<(String, OrganizationLabel)> {
    init.participants
        .iter()
        .filter_map(|p| p.organization.as_ref())
        .map(|o| {
            (
                o.id.clone(),
                OrganizationLabel {
                    name: o.name.clone(),
                    country_code: o.country_code.clone(),
                },
            )
        })
        .collect()
}

/// What a summary is asked for.
#[derive(Debug, Clone, Copy)]
pub struct SummaryWindow {
    /// The day due soon and overdue are judged against.
    pub as_of: Date,
    /// How many days ahead count as due soon.
    pub due_within_days: i32,
}

/// The last change of a domain.
#[derive(Debug, Clone, Default)]
pub struct LastChange {
    /// Its revision; 0 when nothing changed.
    pub revision: u64,
    /// When it was made.
    pub time: Option<pbjson_types::Timestamp>,
}

/// Builds the summary from the counters (in key order) and organization labels.
pub fn assemble(
    domain: Domain,
    counters: impl IntoIterator<Item = (Vec<u8>, i128)>,
    label: impl Fn(&str) -> OrganizationLabel,
    window: SummaryWindow,
    last: LastChange,
) -> DomainSummary {
    let today = dates::day_key(window.as_of) as u32;
    let horizon = today.saturating_add(window.due_within_days.max(0) as u32);
    let mut s = DomainSummary {
        parent: domain.parent(),
        domain: domain.to_proto() as i32,
        milestones: Some(MilestoneCounts::default()),
        last_revision: last.revision as i64,
        last_change_time: last.time,
        as_of: Some(dates::to_calendar(window.as_of)),
        due_within_days: window.due_within_days,
        ..Default::default()
    };
    let mut funding: BTreeMap<(String, i32), (i128, i64)> = BTreeMap::new();
    let ms = s.milestones.get_or_insert_with(Default::default);
    for (k, v) in counters {
        let n = v as i64;
        let day_of = |prefix: &[u8]| k[prefix.len()..].try_into().ok().map(u32::from_be_bytes);
        let i32_of = |prefix: &[u8]| {
            k[prefix.len()..]
                .try_into()
                .ok()
                .map(i32::from_be_bytes)
                .unwrap_or(0)
        };
        if k == key::COUNT {
            s.initiative_count = n;
        } else if k == key::MILESTONES {
            ms.total = n;
        } else if k == key::MET {
            ms.met = n;
        } else if k.starts_with(key::STATUS) {
            s.by_status.push(StatusCount {
                status: i32_of(key::STATUS),
                count: n,
            });
        } else if k.starts_with(key::INSTRUMENT) {
            s.by_instrument.push(InstrumentCount {
                instrument: i32_of(key::INSTRUMENT),
                count: n,
            });
        } else if k.starts_with(key::MILESTONE_DUE) {
            match day_of(key::MILESTONE_DUE) {
                Some(d) if d < today => ms.overdue += n,
                Some(d) if d <= horizon => ms.due_soon += n,
                _ => {}
            }
        } else if k.starts_with(key::PLANNED_END) {
            if day_of(key::PLANNED_END).is_some_and(|d| d < today) {
                s.overdue_initiatives += n;
            }
        } else if let Some((currency, qualifier)) = split_funding(&k, key::FUNDING_COUNT) {
            funding.entry((currency, qualifier)).or_default().1 += n;
        } else if let Some((currency, qualifier)) = split_funding(&k, key::FUNDING_SUM) {
            funding.entry((currency, qualifier)).or_default().0 += v;
        } else if k.starts_with(key::ORGANIZATION) {
            let id = String::from_utf8_lossy(&k[key::ORGANIZATION.len()..]).into_owned();
            let l = label(&id);
            s.organizations.push(OrganizationCount {
                organization_id: id,
                name: l.name,
                country_code: l.country_code,
                initiative_count: n,
            });
        }
    }
    s.funding = funding
        .into_iter()
        .map(|((currency_code, qualifier), (sum, count))| FundingTotal {
            total: Some(money(currency_code, sum)),
            qualifier,
            commitment_count: count,
        })
        .collect();
    s
}

fn split_funding(k: &[u8], prefix: &[u8]) -> Option<(String, i32)> {
    let rest = k.strip_prefix(prefix)?;
    let (currency, q) = rest.split_at(rest.len().checked_sub(5)?);
    let q = q.strip_prefix(b"/")?;
    Some((
        String::from_utf8_lossy(currency).into_owned(),
        i32::from_be_bytes(q.try_into().ok()?),
    ))
}

/// A sum in nanos as Money.
pub fn money(currency_code: String, nanos_total: i128) -> Money {
    Money {
        currency_code,
        units: (nanos_total / NANOS).clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        nanos: (nanos_total % NANOS) as i32,
    }
}

/// A summary computed from scratch over every initiative, each as it stood
/// on the window's day (see [`valid_time::on_day`]): the reference the
/// incremental summary must equal, and the summary of versions read back
/// from history ("as known on" a day).
pub fn recount<'a>(
    domain: Domain,
    initiatives: impl IntoIterator<Item = &'a Initiative>,
    window: SummaryWindow,
    last: LastChange,
) -> DomainSummary {
    let mut r = Recount::new(window);
    for init in initiatives {
        r.add(init);
    }
    r.finish(domain, last)
}

/// A summary counted one initiative at a time (see [`recount`]), holding
/// only the counters, never the initiatives.
#[derive(Debug)]
pub struct Recount {
    window: SummaryWindow,
    counters: BTreeMap<Vec<u8>, i128>,
    labels: BTreeMap<String, OrganizationLabel>,
}

impl Recount {
    /// An empty count for `window`.
    pub fn new(window: SummaryWindow) -> Self {
        Self {
            window,
            counters: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Counts `init` as it stood on the window's day.
    pub fn add(&mut self, init: &Initiative) {
        let Some(init) = valid_time::on_day(init, self.window.as_of) else {
            return;
        };
        for (k, v) in contributions(&init) {
            *self.counters.entry(k).or_default() += v;
        }
        self.labels.extend(organization_labels(&init));
    }

    /// The summary of what was counted.
    pub fn finish(mut self, domain: Domain, last: LastChange) -> DomainSummary {
        self.counters.retain(|_, v| *v != 0);
        let labels = self.labels;
        assemble(
            domain,
            self.counters,
            |id| labels.get(id).cloned().unwrap_or_default(),
            self.window,
            last,
        )
    }
}

/// Adds funding totals into `totals` (keyed by currency and qualifier), for
/// totals across domains.
pub fn add_funding(totals: &mut BTreeMap<(String, i32), (i128, i64)>, items: &[FundingTotal]) {
    for f in items {
        if let Some(m) = &f.total {
            let e = totals
                .entry((m.currency_code.clone(), f.qualifier))
                .or_default();
            e.0 += m.units as i128 * NANOS + m.nanos as i128;
            e.1 += f.commitment_count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        AmountQualifier, ApproximateDate, DatePrecision, FundingCommitment, LifecycleStatus,
        Milestone, MilestoneStatus,
    };
    use time::macros::date;

    fn init(status: LifecycleStatus, due: Option<ApproximateDate>, usd: i64) -> Initiative {
        Initiative {
            status: status as i32,
            instrument: 1,
            milestones: vec![Milestone {
                id: "m".into(),
                title: "t".into(),
                due,
                status: MilestoneStatus::Scheduled as i32,
                ..Default::default()
            }],
            funding: vec![FundingCommitment {
                amount: Some(Money {
                    currency_code: "USD".into(),
                    units: usd,
                    nanos: 500_000_000,
                }),
                qualifier: AmountQualifier::AtLeast as i32,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn delta_of_a_change_is_new_minus_old() {
        let a = init(LifecycleStatus::Announced, None, 10);
        let b = init(LifecycleStatus::InProgress, None, 10);
        let status = |s: LifecycleStatus| with(key::STATUS, &(s as i32).to_be_bytes());
        // Only the two status counters move, one down, one up.
        assert_eq!(
            delta(Some(&a), Some(&b)),
            BTreeMap::from([
                (status(LifecycleStatus::Announced), -1),
                (status(LifecycleStatus::InProgress), 1),
            ])
        );
        assert!(delta(Some(&a), Some(&a)).is_empty());
        // More money in the same currency and qualifier: only the sum moves,
        // by the difference in nanos; the count of commitments does not.
        let richer = init(LifecycleStatus::Announced, None, 15);
        assert_eq!(
            delta(Some(&a), Some(&richer)),
            BTreeMap::from([(
                funding_key(key::FUNDING_SUM, "USD", AmountQualifier::AtLeast as i32),
                5 * NANOS
            )])
        );
        // A creation adds the new record's contributions; a deletion takes
        // away the old one's.
        assert_eq!(delta(None, Some(&b)), contributions(&b));
        let gone = delta(Some(&b), None);
        assert_eq!(gone.len(), contributions(&b).len());
        assert!(contributions(&b)
            .iter()
            .all(|(k, v)| gone.get(k) == Some(&-v)));
        assert_eq!(gone.get(key::COUNT), Some(&-1));
    }

    #[test]
    fn due_soon_and_overdue_follow_the_end_of_the_period() {
        let q1 = ApproximateDate {
            precision: DatePrecision::Quarter as i32,
            year: 2024,
            quarter: 1,
            ..Default::default()
        };
        let items = [
            init(LifecycleStatus::Announced, Some(q1), 10),
            init(LifecycleStatus::Announced, None, 5),
        ];
        let at = |as_of| {
            recount(
                Domain::Ai,
                &items,
                SummaryWindow {
                    as_of,
                    due_within_days: 30,
                },
                LastChange::default(),
            )
        };
        let s = at(date!(2024 - 03 - 31));
        assert_eq!(
            (
                s.milestones.as_ref().unwrap().due_soon,
                s.milestones.as_ref().unwrap().overdue
            ),
            (1, 0)
        );
        let s = at(date!(2024 - 04 - 01));
        assert_eq!(
            (
                s.milestones.as_ref().unwrap().due_soon,
                s.milestones.as_ref().unwrap().overdue
            ),
            (0, 1)
        );
        let s = at(date!(2024 - 01 - 01));
        assert_eq!(
            s.milestones.as_ref().unwrap().due_soon,
            0,
            "90 days away is not within 30"
        );
        assert_eq!(s.funding.len(), 1);
        assert_eq!(
            s.funding[0].total,
            Some(Money {
                currency_code: "USD".into(),
                units: 16,
                nanos: 0
            })
        );
        assert_eq!(s.funding[0].commitment_count, 2);
        assert_eq!(s.initiative_count, 2);
    }
}
