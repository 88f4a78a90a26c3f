//! How one batch becomes requests, for each [`History`] mode. Pure: no network.
//!
//! A batch often holds several readings of one sensor (a sink catching up after an outage, a
//! backfill). A batch upsert may carry one reading per entity only: two would leave the broker to
//! pick one, and the history would lose the other. So readings are grouped by entity, oldest
//! first, and:
//! - `upserts`: round k sends the k-th reading of every entity that has one;
//! - `temporal`: all but the latest of each entity go through the temporal API (one request per
//!   entity, [`temporal_older`]), then one round sends the latest of each; but only when that takes
//!   fewer requests than the `upserts` rounds ([`plan`]): one request per entity loses to rounds
//!   of `max_entities` entities when each entity has only a few readings in the batch;
//! - `latest`: one round sends the latest of each, standing for all the entity's readings.

use super::config::History;
use smartcity_model::Reading;
use std::collections::HashMap;

/// One entity's place in an upsert round: the reading sent, and the readings whose fate is that
/// upsert's (itself, or in `latest` mode every reading of the entity in the batch).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Item {
    pub sent: usize,
    pub covers: Vec<usize>,
}

/// The batch's readings grouped by entity (`ids[i]` is reading i's entity): entities in order of
/// first appearance, each group oldest first (equal times keep the batch's order).
pub(super) fn by_entity(batch: &[Reading], ids: &[String]) -> Vec<Vec<usize>> {
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let g = *slot.entry(id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    for g in &mut groups {
        g.sort_by_key(|&i| batch[i].observed_at); // stable
    }
    groups
}

/// The upsert rounds, in the order they must go out.
pub(super) fn upsert_rounds(groups: &[Vec<usize>], history: History) -> Vec<Vec<Item>> {
    let latest = |g: &Vec<usize>, covers: Vec<usize>| g.last().map(|&sent| Item { sent, covers });
    match history {
        History::Upserts => {
            let depth = groups.iter().map(Vec::len).max().unwrap_or(0);
            (0..depth)
                .map(|k| groups.iter().filter_map(|g| g.get(k)).map(|&i| Item { sent: i, covers: vec![i] }).collect())
                .collect()
        }
        History::Temporal => {
            vec![groups.iter().filter_map(|g| latest(g, g.last().copied().into_iter().collect())).collect()]
        }
        History::Latest => vec![groups.iter().filter_map(|g| latest(g, g.clone())).collect()],
    }
    .into_iter()
    .filter(|round: &Vec<Item>| !round.is_empty())
    .collect()
}

/// The requests for a batch: the temporal POSTs (each the older readings of one entity), then the
/// upsert rounds. `temporal` takes the temporal API only where it needs fewer requests.
pub(super) fn plan(groups: &[Vec<usize>], history: History, max_entities: usize) -> (Vec<Vec<usize>>, Vec<Vec<Item>>) {
    let per_request = max_entities.max(1);
    if history == History::Temporal {
        let upserts: usize =
            upsert_rounds(groups, History::Upserts).iter().map(|r| r.len().div_ceil(per_request)).sum();
        let older = temporal_older(groups);
        let temporal = older.len() + groups.len().div_ceil(per_request);
        if temporal < upserts {
            return (older, upsert_rounds(groups, History::Temporal));
        }
        return (Vec::new(), upsert_rounds(groups, History::Upserts));
    }
    (Vec::new(), upsert_rounds(groups, history))
}

/// In `temporal` mode, the readings of each entity that go through the temporal API: all but the
/// latest, oldest first; entities with a single reading have none.
pub(super) fn temporal_older(groups: &[Vec<usize>]) -> Vec<Vec<usize>> {
    groups.iter().filter(|g| g.len() > 1).map(|g| g[..g.len() - 1].to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartcity_model::codec::ngsi_ld::entity_id;
    use smartcity_model::{Catalogue, ReadingStream};

    /// Three ticks of ten sensors, the batch shuffled so that the ticks interleave out of order.
    fn batch() -> (Vec<Reading>, Vec<String>) {
        let mut stream = ReadingStream::new(Catalogue::default_ten(), 1);
        let mut ticks = Vec::new();
        for t in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z"] {
            stream.tick_into(t.parse().unwrap(), &mut ticks);
        }
        // Newest tick first: grouping must restore time order.
        let batch: Vec<Reading> = ticks[20..].iter().chain(&ticks[..20]).cloned().collect();
        let ids = batch.iter().map(entity_id).collect();
        (batch, ids)
    }

    #[test]
    fn groups_are_per_entity_oldest_first() {
        let (batch, ids) = batch();
        let groups = by_entity(&batch, &ids);
        assert_eq!(groups.len(), 10);
        for g in &groups {
            assert_eq!(g.len(), 3);
            assert!(g.iter().all(|&i| ids[i] == ids[g[0]]));
            assert!(g.windows(2).all(|w| batch[w[0]].observed_at < batch[w[1]].observed_at));
        }
    }

    #[test]
    fn upserts_send_every_reading_one_per_entity_per_round_in_time_order() {
        let (batch, ids) = batch();
        let rounds = upsert_rounds(&by_entity(&batch, &ids), History::Upserts);
        assert_eq!(rounds.len(), 3);
        let mut sent: Vec<usize> = Vec::new();
        for (k, round) in rounds.iter().enumerate() {
            let mut entities: Vec<&str> = round.iter().map(|item| ids[item.sent].as_str()).collect();
            entities.sort_unstable();
            entities.dedup();
            assert_eq!(entities.len(), 10, "round {k}: one reading per entity");
            assert!(round.iter().all(|item| item.covers == [item.sent]));
            let second = (k * 5) as i64;
            assert!(round.iter().all(|item| batch[item.sent].observed_at.timestamp() % 60 == second));
            sent.extend(round.iter().map(|item| item.sent));
        }
        sent.sort_unstable();
        assert_eq!(sent, (0..30).collect::<Vec<_>>(), "every reading exactly once");
    }

    #[test]
    fn latest_stands_for_the_whole_entity_and_temporal_sends_the_rest_first() {
        let (batch, ids) = batch();
        let groups = by_entity(&batch, &ids);
        let latest = upsert_rounds(&groups, History::Latest);
        assert_eq!(latest.len(), 1);
        assert!(latest[0]
            .iter()
            .all(|item| item.covers.len() == 3 && batch[item.sent].observed_at.timestamp() % 60 == 10));

        let temporal = upsert_rounds(&groups, History::Temporal);
        assert!(temporal[0].iter().all(|item| item.covers == [item.sent]));
        let older = temporal_older(&groups);
        assert_eq!(older.len(), 10);
        assert!(older.iter().all(|g| g.len() == 2 && batch[g[0]].observed_at < batch[g[1]].observed_at));
        let mut all: Vec<usize> = older.concat();
        all.extend(temporal[0].iter().map(|item| item.sent));
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>(), "every reading exactly once");
        assert!(upsert_rounds(&[], History::Upserts).is_empty());
    }

    #[test]
    fn temporal_takes_the_temporal_api_only_where_it_needs_fewer_requests() {
        let (batch, ids) = batch();
        let groups = by_entity(&batch, &ids);
        // Ten entities of three readings: 3 upserts of 10 entities against 10 POSTs + 1 upsert.
        let (posts, rounds) = plan(&groups, History::Temporal, 100);
        assert!(posts.is_empty() && rounds.len() == 3, "upserts win");
        // One entity per upsert request: 30 upserts against 10 POSTs + 10 upserts.
        let (posts, rounds) = plan(&groups, History::Temporal, 1);
        assert_eq!((posts.len(), rounds.len()), (10, 1), "the temporal API wins");
        let (posts, rounds) = plan(&groups, History::Upserts, 2);
        assert_eq!((posts.len(), rounds.len()), (0, 3));
    }
}
