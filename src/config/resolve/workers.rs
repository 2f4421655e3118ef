//! `[simulation] workers` and `[[simulation.worker_events]]`: how many workers `simulate`
//! runs against its in-memory lease table, and when each crashes, pauses, stops or starts.
//!
//! The schedule is checked as a whole, in time order, the way the workers would live it:
//! a worker whose first event is `start` is absent until then, every other one runs from
//! the start; only a running worker can crash, pause or stop, only an absent, crashed or
//! stopped one can start. So `simulate` never meets an event it cannot carry out.

use super::problems::Problems;
use super::rules::MAX_SECONDS;
use crate::config::mapping::{Coordination, Simulation, WorkerAction, WorkerEvent};
use crate::config::schema::{SimulationSettings, WorkerEventConfig};

/// Most `workers`.
pub const MAX_WORKERS: u64 = 64;

const SUBJECT: &str = "simulation";

/// The worker count (1 when out of range) and the schedule in time order (ties in file
/// order); entries with a problem are left out.
pub(super) fn resolve_workers(
    s: &SimulationSettings,
    max_duration_ms: i64,
    p: &mut Problems,
) -> (usize, Vec<WorkerEvent>) {
    let workers = if p.range(SUBJECT, "workers", s.workers, 1, MAX_WORKERS) {
        s.workers as usize
    } else {
        1
    };
    let mut events: Vec<(usize, WorkerEvent)> = s
        .worker_events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| resolve_event(i, e, workers, max_duration_ms, p).map(|e| (i, e)))
        .collect();
    events.sort_by_key(|(_, e)| e.at_ms);
    check_schedule(&events, workers, p);
    (workers, events.into_iter().map(|(_, e)| e).collect())
}

fn resolve_event(
    i: usize,
    e: &WorkerEventConfig,
    workers: usize,
    max_duration_ms: i64,
    p: &mut Problems,
) -> Option<WorkerEvent> {
    let key = |k: &str| format!("worker_events[{i}].{k}");
    let worker_ok = p.range(SUBJECT, &key("worker"), e.worker, 1, workers as u64);
    let max_seconds = (max_duration_ms / 1000).max(0) as u64;
    let at_ok = p.range(SUBJECT, &key("at_seconds"), e.at_seconds, 0, max_seconds);
    let for_ms = match (e.action.as_str(), e.for_seconds) {
        ("pause", None) => {
            p.add(
                SUBJECT,
                format!("worker_events[{i}]: action = \"pause\" needs for_seconds"),
            );
            None
        }
        ("pause", Some(seconds)) => {
            Some(p.seconds_as_ms(SUBJECT, &key("for_seconds"), seconds, 1, MAX_SECONDS) as i64)
                .filter(|ms| *ms > 0)
        }
        (_, Some(_)) => {
            p.add(
                SUBJECT,
                format!("worker_events[{i}]: for_seconds applies to action = \"pause\" only"),
            );
            None
        }
        (_, None) => None,
    };
    let action = match e.action.as_str() {
        "crash" => Some(WorkerAction::Crash),
        "pause" => for_ms.map(|for_ms| WorkerAction::Pause { for_ms }),
        "stop" => Some(WorkerAction::Stop),
        "start" => Some(WorkerAction::Start),
        other => {
            p.add(
                SUBJECT,
                format!(
                    "{} = {other:?}: must be \"crash\", \"pause\", \"stop\" or \"start\"",
                    key("action")
                ),
            );
            None
        }
    };
    let action = action.filter(|_| worker_ok && at_ok)?;
    Some(WorkerEvent {
        worker: e.worker as usize,
        at_ms: e.at_seconds as i64 * 1000,
        action,
    })
}

/// Where a worker stands between events, for the schedule check.
#[derive(Clone, Copy)]
enum Life {
    NotStarted,
    Running,
    PausedUntil(i64),
    Down(&'static str, i64),
}

fn check_schedule(events: &[(usize, WorkerEvent)], workers: usize, p: &mut Problems) {
    let mut lives: Vec<Life> = (1..=workers)
        .map(|w| {
            let first = events.iter().find(|(_, e)| e.worker == w);
            match first {
                Some((_, e)) if e.action == WorkerAction::Start => Life::NotStarted,
                _ => Life::Running,
            }
        })
        .collect();
    for (i, event) in events {
        let Some(life) = lives.get_mut(event.worker - 1) else {
            continue;
        };
        if let Life::PausedUntil(until) = *life {
            if event.at_ms >= until {
                *life = Life::Running;
            }
        }
        let starting = event.action == WorkerAction::Start;
        let allowed = match *life {
            Life::Running => !starting,
            Life::PausedUntil(_) => false,
            Life::NotStarted | Life::Down(..) => starting,
        };
        if !allowed {
            let state = match *life {
                Life::NotStarted => "it has not started yet".to_string(),
                Life::Running => "it is running already".to_string(),
                Life::PausedUntil(until) => format!("it is paused until {} s", until / 1000),
                Life::Down(how, at) => format!("it {how} at {} s", at / 1000),
            };
            p.add(
                SUBJECT,
                format!(
                    "worker_events[{i}]: worker {} cannot {} at {} s: {state}",
                    event.worker,
                    verb(event.action),
                    event.at_ms / 1000
                ),
            );
            continue;
        }
        *life = match event.action {
            WorkerAction::Crash => Life::Down("crashed", event.at_ms),
            WorkerAction::Stop => Life::Down("stopped", event.at_ms),
            WorkerAction::Pause { for_ms } => Life::PausedUntil(event.at_ms + for_ms),
            WorkerAction::Start => Life::Running,
        };
    }
}

fn verb(action: WorkerAction) -> &'static str {
    match action {
        WorkerAction::Crash => "crash",
        WorkerAction::Pause { .. } => "pause",
        WorkerAction::Stop => "stop",
        WorkerAction::Start => "start",
    }
}

/// Several workers, or any worker event, need the lease table they share.
pub(super) fn check_lease_table(sim: &Simulation, c: &Coordination, p: &mut Problems) {
    if c.lease_table.is_some() {
        return;
    }
    if sim.workers > 1 {
        p.add(
            SUBJECT,
            format!(
                "workers = {}: several workers share the mappings through a lease table; set [coordination] store = \"dynamodb\" (in simulate, an in-memory lease table)",
                sim.workers
            ),
        );
    } else if !sim.worker_events.is_empty() {
        p.add(
            SUBJECT,
            "worker_events need a lease table; set [coordination] store = \"dynamodb\" (in simulate, an in-memory lease table)",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::resolve::test_support::*;
    use crate::config::{parse, WorkerAction, WorkerEvent};
    use std::path::Path;

    const LEASES: &str = "[coordination]\nstore = \"dynamodb\"\n";

    fn with(simulation: &str, coordination: &str) -> String {
        format!(
            "[simulation]\n{simulation}\n{coordination}\n{WORLD}\n{}",
            mapping_toml("")
        )
    }

    fn problems_of(simulation: &str) -> Vec<String> {
        match parse(&with(simulation, LEASES), Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn workers_and_a_schedule_resolve_in_time_order() {
        let text = with(
            "workers = 3\n\
             [[simulation.worker_events]]\nworker = 2\nat_seconds = 60\naction = \"pause\"\nfor_seconds = 30\n\
             [[simulation.worker_events]]\nworker = 3\nat_seconds = 10\naction = \"start\"\n\
             [[simulation.worker_events]]\nworker = 3\nat_seconds = 100\naction = \"crash\"\n",
            LEASES,
        );
        let config = parse(&text, Path::new("")).unwrap();
        assert_eq!(config.simulation.workers, 3);
        let event = |worker, at_ms, action| WorkerEvent {
            worker,
            at_ms,
            action,
        };
        assert_eq!(
            config.simulation.worker_events,
            vec![
                event(3, 10_000, WorkerAction::Start),
                event(2, 60_000, WorkerAction::Pause { for_ms: 30_000 }),
                event(3, 100_000, WorkerAction::Crash),
            ]
        );
    }

    #[test]
    fn bad_counts_and_entries_name_the_key_and_the_value() {
        assert_eq!(
            problems_of("workers = 0"),
            vec!["simulation: workers = 0: must be 1..=64"]
        );
        assert_eq!(
            problems_of(
                "workers = 2\nmax_duration_seconds = 100\n\
                 [[simulation.worker_events]]\nworker = 3\nat_seconds = 200\naction = \"nap\"\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 5\naction = \"pause\"\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 5\naction = \"crash\"\nfor_seconds = 3\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 5\naction = \"pause\"\nfor_seconds = 0\n"
            ),
            vec![
                "simulation: worker_events[0].worker = 3: must be 1..=2",
                "simulation: worker_events[0].at_seconds = 200: must be 0..=100",
                "simulation: worker_events[0].action = \"nap\": must be \"crash\", \"pause\", \"stop\" or \"start\"",
                "simulation: worker_events[1]: action = \"pause\" needs for_seconds",
                "simulation: worker_events[2]: for_seconds applies to action = \"pause\" only",
                "simulation: worker_events[3].for_seconds = 0: must be 1..=31536000",
            ]
        );
    }

    #[test]
    fn the_schedule_must_be_livable() {
        assert_eq!(
            problems_of(
                "workers = 2\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 10\naction = \"pause\"\nfor_seconds = 30\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 20\naction = \"stop\"\n\
                 [[simulation.worker_events]]\nworker = 2\nat_seconds = 5\naction = \"crash\"\n\
                 [[simulation.worker_events]]\nworker = 2\nat_seconds = 6\naction = \"crash\"\n\
                 [[simulation.worker_events]]\nworker = 1\nat_seconds = 40\naction = \"start\"\n"
            ),
            vec![
                "simulation: worker_events[3]: worker 2 cannot crash at 6 s: it crashed at 5 s",
                "simulation: worker_events[1]: worker 1 cannot stop at 20 s: it is paused until 40 s",
                "simulation: worker_events[4]: worker 1 cannot start at 40 s: it is running already",
            ]
        );
        assert!(problems_of(
            "workers = 2\n\
             [[simulation.worker_events]]\nworker = 2\nat_seconds = 5\naction = \"crash\"\n\
             [[simulation.worker_events]]\nworker = 2\nat_seconds = 9\naction = \"start\"\n"
        )
        .is_empty());
    }

    #[test]
    fn several_workers_need_the_lease_table() {
        let problems = |sim: &str| match parse(&with(sim, ""), Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        };
        assert_eq!(
            problems("workers = 2"),
            vec!["simulation: workers = 2: several workers share the mappings through a lease table; set [coordination] store = \"dynamodb\" (in simulate, an in-memory lease table)"]
        );
        assert_eq!(
            problems("[[simulation.worker_events]]\nworker = 1\nat_seconds = 5\naction = \"stop\"\n"),
            vec!["simulation: worker_events need a lease table; set [coordination] store = \"dynamodb\" (in simulate, an in-memory lease table)"]
        );
    }
}
