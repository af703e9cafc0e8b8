//! The dispatcher against the simulated cloud, on a virtual clock (a paused tokio runtime): limits
//! per account and in all, one driver per run, approval timers, conflicting decisions, resume at
//! start, graceful shutdown, backpressure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cordon_engine::clock::{Clock, VirtualClock};
use cordon_engine::cloud::{Chat, Cloud, CloudResult, Delivery};
use cordon_engine::config::Settings;
use cordon_engine::dispatch::{DispatchError, Dispatcher, Limits};
use cordon_engine::event::{self, FindingEvent};
use cordon_engine::ids::SeededIds;
use cordon_engine::journal::{Journal, MemoryJournal};
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::{RunState, StepState};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits as ScriptLimits, Sandbox};
use cordon_simulator::SimCloud;

const EVENT: &[u8] = include_bytes!("../../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");
const START_MS: u64 = 1_800_000_000_000;

/// A chat that takes `delay` to post and records, per account named in the message, how many
/// posts were in flight at once.
#[derive(Default)]
struct SlowChat {
    delay: Duration,
    state: Mutex<ChatState>,
}

#[derive(Default)]
struct ChatState {
    in_flight: HashMap<String, usize>,
    max_per_account: HashMap<String, usize>,
    total: usize,
    max_total: usize,
    posted: Vec<String>,
}

#[async_trait]
impl Chat for SlowChat {
    async fn post(&self, _channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        let account = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        {
            let mut s = self.state.lock().unwrap();
            let n = s.in_flight.entry(account.clone()).or_default();
            *n += 1;
            let n = *n;
            let max = s.max_per_account.entry(account.clone()).or_default();
            *max = (*max).max(n);
            s.total += 1;
            s.max_total = s.max_total.max(s.total);
        }
        tokio::time::sleep(self.delay).await;
        let mut s = self.state.lock().unwrap();
        *s.in_flight.get_mut(&account).unwrap() -= 1;
        s.total -= 1;
        s.posted.push(text.to_string());
        Ok(Delivery::Posted)
    }
}

struct Fixture {
    dispatcher: Dispatcher,
    chat: Arc<SlowChat>,
    journal: Arc<MemoryJournal>,
    clock: Arc<VirtualClock>,
    base: FindingEvent,
}

fn playbook(steps: &str) -> String {
    playbook_in("auto", steps)
}

fn playbook_in(mode: &str, steps: &str) -> String {
    format!("id: p\ntitle: p\nversion: 1\nmode: {mode}\ntrigger:\n  match: {{source: [aws.guardduty]}}\nsteps:\n{steps}")
}

const TELL: &str = "  - id: tell\n    action: notify.chat\n    with: {text: \"${finding.account} ${finding.id}\"}\n";

fn fixture_with(playbook: &str, limits: Limits, journal: Arc<MemoryJournal>) -> Fixture {
    let sandbox = Arc::new(Sandbox::new(ScriptLimits::default()));
    let set = PlaybookSet::from_sources(&[("p.yaml", playbook)], &sandbox)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let sim = Arc::new(SimCloud::in_memory());
    let chat = Arc::new(SlowChat {
        delay: Duration::from_secs(10),
        ..SlowChat::default()
    });
    let cloud = Cloud::with_chat(sim, chat.clone());
    let clock = Arc::new(VirtualClock::starting_at(START_MS));
    let runner = Runner::new(
        journal.clone(),
        cloud,
        Settings::default(),
        sandbox,
        Arc::new(set),
        clock.clone(),
    )
    .with_ids(Arc::new(SeededIds::new(1)));
    let base = event::parse(EVENT).unwrap().findings()[0].clone();
    Fixture {
        dispatcher: Dispatcher::new(runner, limits),
        chat,
        journal,
        clock,
        base,
    }
}

fn fixture(playbook: &str, limits: Limits) -> Fixture {
    fixture_with(playbook, limits, Arc::new(MemoryJournal::new()))
}

/// The fixture's finding, as if raised in `account` with its own id, on its own instance.
fn finding(f: &Fixture, account: &str, n: usize) -> FindingEvent {
    let mut fe = f.base.clone();
    fe.finding.account = account.into();
    fe.finding.id = format!("finding-{account}-{n}");
    fe.finding.dedup_id = fe.finding.id.clone();
    fe.finding.resources[0].id = format!("i-{account}{n:05}");
    fe
}

async fn submit(f: &Fixture, fe: &FindingEvent) -> String {
    let s = f.dispatcher.submit(fe, Instant::now()).await.unwrap();
    assert_eq!(s[0].status, "created");
    s[0].run_id.clone().unwrap()
}

#[tokio::test(start_paused = true)]
async fn runs_in_flight_are_bounded_per_account_and_in_all() {
    let limits = Limits {
        runs: 3,
        per_account: 2,
        queue: 100,
    };
    let f = fixture(&playbook(TELL), limits);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(submit(&f, &finding(&f, "111111111111", n)).await);
        ids.push(submit(&f, &finding(&f, "222222222222", n)).await);
    }
    for id in &ids {
        assert_eq!(f.dispatcher.wait(id).await.unwrap(), RunState::Succeeded);
    }
    let s = f.chat.state.lock().unwrap();
    assert_eq!(s.posted.len(), 8);
    assert_eq!(s.max_per_account["111111111111"], 2);
    assert_eq!(s.max_per_account["222222222222"], 2);
    assert_eq!(s.max_total, 3, "the global limit holds across accounts");
    // 8 posts of 10 s, 3 at a time: at least three rounds of virtual time.
    assert!(f.clock.now_ms() - START_MS >= 30_000);
}

#[tokio::test(start_paused = true)]
async fn a_run_asked_to_be_driven_twice_runs_each_step_once() {
    let f = fixture(&playbook(TELL), Limits::default());
    let fe = finding(&f, "111111111111", 0);
    let id = submit(&f, &fe).await;
    // A duplicate delivery and a resume while the first drive is under way.
    let again = f.dispatcher.submit(&fe, Instant::now()).await.unwrap();
    assert_eq!(again[0].status, "duplicate");
    f.dispatcher.start().await.unwrap();
    assert_eq!(f.dispatcher.wait(&id).await.unwrap(), RunState::Succeeded);
    f.dispatcher.idle().await;
    assert_eq!(f.chat.state.lock().unwrap().posted.len(), 1);
}

const APPROVAL: &str =
    "  - id: ask\n    action: approval\n    with: {timeout: 2h, default: approve}\n";

#[tokio::test(start_paused = true)]
async fn an_approval_timeout_fires_from_the_clock_and_the_run_goes_on() {
    let f = fixture(&playbook(&format!("{APPROVAL}{TELL}")), Limits::default());
    let real = Instant::now();
    let id = submit(&f, &finding(&f, "111111111111", 0)).await;
    assert_eq!(
        f.dispatcher.wait(&id).await.unwrap(),
        RunState::WaitingApproval
    );
    // Nobody decides: two hours of virtual time later the default applies.
    let mut updates = f.dispatcher.subscribe();
    loop {
        let u = updates.recv().await.unwrap();
        if u.run_id == id && u.settled && u.state == RunState::Succeeded {
            break;
        }
    }
    let run = f.journal.get(&id).await.unwrap().unwrap();
    let decision = run.steps[0].decision.clone().unwrap();
    assert_eq!((decision.approved, decision.by.as_str()), (true, "timeout"));
    assert_eq!(decision.at_ms, START_MS + 2 * 3_600_000);
    assert_eq!(run.steps[1].state, StepState::Succeeded);
    assert!(real.elapsed() < Duration::from_secs(60), "virtual time");
}

#[tokio::test(start_paused = true)]
async fn two_people_deciding_at_once_never_both_win() {
    let f = fixture(
        &playbook_in(
            "approval",
            &format!("  - id: ask\n    action: approval\n    approve: true\n{TELL}"),
        ),
        Limits::default(),
    );
    let id = submit(&f, &finding(&f, "111111111111", 0)).await;
    assert_eq!(
        f.dispatcher.wait(&id).await.unwrap(),
        RunState::WaitingApproval
    );
    let (a, b) = tokio::join!(
        f.dispatcher.decide(&id, "ask", true, "alice"),
        f.dispatcher.decide(&id, "ask", false, "bob"),
    );
    let (winner, loser) = match (&a, &b) {
        (Ok(_), Err(e)) => ("alice", e.to_string()),
        (Err(e), Ok(_)) => ("bob", e.to_string()),
        other => panic!("exactly one decision must win: {other:?}"),
    };
    assert!(loser.contains("not waiting for approval"), "{loser}");
    assert!(loser.contains(&format!("by {winner}")), "{loser}");
    let state = f.dispatcher.wait(&id).await.unwrap();
    let run = f.journal.get(&id).await.unwrap().unwrap();
    assert_eq!(run.steps[0].decision.as_ref().unwrap().by, winner);
    let expected = if winner == "alice" {
        RunState::Succeeded
    } else {
        RunState::Denied
    };
    assert_eq!(state, expected);
}

#[tokio::test(start_paused = true)]
async fn a_new_dispatcher_resumes_what_a_stopped_one_left() {
    let journal = Arc::new(MemoryJournal::new());
    let steps = format!("{TELL}  - id: again\n    action: notify.chat\n    with: {{text: \"${{finding.account}} second\"}}\n");
    let f = fixture_with(&playbook(&steps), Limits::default(), journal.clone());
    let id = submit(&f, &finding(&f, "111111111111", 0)).await;
    // Let the first post start, then shut down with a grace period longer than one post.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(f.dispatcher.shutdown(Duration::from_secs(60)).await);
    let run = journal.get(&id).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Running, "stopped between steps");
    assert_eq!(
        run.steps[0].state,
        StepState::Succeeded,
        "the step under way finished"
    );
    assert_eq!(run.steps[1].state, StepState::Pending);
    let refused = f
        .dispatcher
        .submit(&finding(&f, "111111111111", 1), Instant::now())
        .await;
    assert!(matches!(refused, Err(DispatchError::ShuttingDown)));

    let g = fixture_with(&playbook(&steps), Limits::default(), journal.clone());
    let resumed = g.dispatcher.start().await.unwrap();
    assert_eq!(resumed.driven, vec![id.clone()]);
    assert_eq!(g.dispatcher.wait(&id).await.unwrap(), RunState::Succeeded);
    assert_eq!(
        g.chat.state.lock().unwrap().posted,
        vec!["111111111111 second"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_before_writing_anything() {
    let limits = Limits {
        runs: 1,
        per_account: 1,
        queue: 2,
    };
    let f = fixture(&playbook(TELL), limits);
    submit(&f, &finding(&f, "111111111111", 0)).await;
    submit(&f, &finding(&f, "111111111111", 1)).await;
    let third = finding(&f, "111111111111", 2);
    match f.dispatcher.submit(&third, Instant::now()).await {
        Err(DispatchError::Busy {
            queued: 2,
            limit: 2,
            retry_after,
        }) => assert!(retry_after > Duration::ZERO),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(f.journal.ids().await.unwrap().len(), 2, "nothing written");
    f.dispatcher.idle().await;
    submit(&f, &third).await;
}

/// Two findings on one instance arrive together (GuardDuty often raises several): their runs
/// take turns on the instance, while runs on other instances of the same account go on at once.
#[tokio::test(start_paused = true)]
async fn runs_on_one_resource_take_turns() {
    let tell_resource = "  - id: tell\n    action: notify.chat\n    with: {text: \"${finding.resources[0].id} contained\"}\n";
    let f = fixture(&playbook(tell_resource), Limits::default());
    let on = |n: usize, instance: &str| {
        let mut fe = finding(&f, "111111111111", n);
        fe.finding.resources[0].id = instance.into();
        fe
    };
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(submit(&f, &on(n, "i-0aaaaaaaaaaaaaaaa")).await);
        ids.push(submit(&f, &on(10 + n, "i-0bbbbbbbbbbbbbbbb")).await);
    }
    for id in &ids {
        assert_eq!(f.dispatcher.wait(id).await.unwrap(), RunState::Succeeded);
    }
    let s = f.chat.state.lock().unwrap();
    assert_eq!(s.posted.len(), 6);
    assert_eq!(s.max_per_account["i-0aaaaaaaaaaaaaaaa"], 1, "one at a time");
    assert_eq!(s.max_per_account["i-0bbbbbbbbbbbbbbbb"], 1, "one at a time");
    assert_eq!(s.max_total, 2, "the two instances in parallel");
}

const TWO_PERSON: &str = "  - id: ask\n    action: approval\n    with: {approvers: 2}\n";

#[tokio::test(start_paused = true)]
async fn a_two_person_step_goes_on_only_after_two_different_people_approve() {
    let f = fixture(
        &playbook_in("approval", &format!("{TWO_PERSON}{TELL}")),
        Limits::default(),
    );
    let id = submit(&f, &finding(&f, "111111111111", 0)).await;
    assert_eq!(
        f.dispatcher.wait(&id).await.unwrap(),
        RunState::WaitingApproval
    );
    let first = f
        .dispatcher
        .decide(&id, "ask", true, "alice")
        .await
        .unwrap();
    assert_eq!(first, RunState::WaitingApproval, "one approval of two");
    let twice = f.dispatcher.decide(&id, "ask", true, "ALICE").await;
    let e = twice.unwrap_err().to_string();
    assert!(e.contains("alice already approved step ask"), "{e}");
    assert!(e.contains("1 of 2 approvals"), "{e}");
    f.dispatcher.idle().await;
    assert!(
        f.chat.state.lock().unwrap().posted.is_empty(),
        "nothing ran yet"
    );

    assert_eq!(
        f.dispatcher.decide(&id, "ask", true, "bob").await.unwrap(),
        RunState::Running
    );
    assert_eq!(f.dispatcher.wait(&id).await.unwrap(), RunState::Succeeded);
    assert_eq!(f.chat.state.lock().unwrap().posted.len(), 1);
    let run = f.journal.get(&id).await.unwrap().unwrap();
    let who: Vec<&str> = run.steps[0]
        .approvals
        .iter()
        .map(|d| d.by.as_str())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
    assert!(run.steps[0]
        .approvals
        .iter()
        .all(|d| d.approved && d.at_ms >= START_MS));
    assert_eq!(run.steps[0].decision.as_ref().unwrap().by, "bob");
    let timeline: Vec<String> = f
        .journal
        .timeline(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.what)
        .collect();
    assert!(timeline.contains(
        &"approved by alice (1 of 2 approvals); waiting for another approver".to_string()
    ));
    assert!(timeline.contains(&"approved by bob (2 of 2 approvals)".to_string()));
}

#[tokio::test(start_paused = true)]
async fn one_denial_denies_a_two_person_step_whoever_approved_before() {
    let f = fixture(
        &playbook_in("approval", &format!("{TWO_PERSON}{TELL}")),
        Limits::default(),
    );
    let id = submit(&f, &finding(&f, "111111111111", 0)).await;
    f.dispatcher.wait(&id).await.unwrap();
    f.dispatcher
        .decide(&id, "ask", true, "alice")
        .await
        .unwrap();
    assert_eq!(
        f.dispatcher
            .decide(&id, "ask", false, "carol")
            .await
            .unwrap(),
        RunState::Denied
    );
    f.dispatcher.idle().await;
    let run = f.journal.get(&id).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Denied);
    assert_eq!(run.steps[0].state, StepState::Denied);
    assert_eq!(
        run.steps[0].approvals.len(),
        1,
        "alice's approval stays on record"
    );
    assert_eq!(run.error.as_deref(), Some("step ask denied by carol"));
    assert!(f.chat.state.lock().unwrap().posted.is_empty());
    let late = f.dispatcher.decide(&id, "ask", true, "bob").await;
    assert!(late.unwrap_err().to_string().contains("denied by carol"));
}
