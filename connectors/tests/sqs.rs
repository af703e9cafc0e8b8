//! The SQS intake against moto's SQS on 127.0.0.1: what a queue's owner would check. Done
//! messages leave the queue; an invalid one stays until the redrive policy moves it to the
//! dead-letter queue; a retried one comes back after the time asked for, not the visibility
//! timeout; a slow one is never handed out twice while it is handled, and does not hold up the
//! others; stopping finishes what is in flight and takes nothing new; receive errors back off,
//! and a receive that never answers is given up.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use common::Moto;
use cordon_connectors::{SqsCounts, SqsIntake, SqsOptions, Verdict};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A queue with a dead-letter queue (redrive after `max_receives` receives).
struct Queues {
    client: Client,
    url: String,
    dlq_url: String,
}

async fn queues(moto: &Moto, max_receives: u32) -> Queues {
    let client = Client::new(&moto.config().await);
    let dlq_url = client
        .create_queue()
        .queue_name("cordon-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives});
    let url = client
        .create_queue()
        .queue_name("cordon-findings")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Queues {
        client,
        url,
        dlq_url,
    }
}

impl Queues {
    async fn send(&self, body: &str) {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// (ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible) of a queue.
    async fn depth(&self, url: &str) -> (u64, u64) {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let a = out.attributes.unwrap();
        let n = |k| a[&k].parse::<u64>().unwrap();
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

/// Fast polling and a short visibility timeout, so the tests take seconds.
fn options(visibility_s: u64) -> SqsOptions {
    SqsOptions {
        wait_time: Duration::from_secs(1),
        visibility_timeout: Duration::from_secs(visibility_s),
        concurrency: 10,
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

/// Every body the handler was given, with when, in order.
type Calls = Arc<Mutex<HashMap<Vec<u8>, Vec<Instant>>>>;

fn record(calls: &Calls, body: &[u8]) -> usize {
    let mut c = calls.lock().unwrap();
    let seen = c.entry(body.to_vec()).or_default();
    seen.push(Instant::now());
    seen.len()
}

fn times(calls: &Calls, body: &str) -> Vec<Instant> {
    calls
        .lock()
        .unwrap()
        .get(body.as_bytes())
        .cloned()
        .unwrap_or_default()
}

/// Starts `run` in a task.
fn start<F, Fut>(intake: &Arc<SqsIntake>, handle: F) -> (CancellationToken, JoinHandle<SqsCounts>)
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Verdict> + Send + 'static,
{
    let stop = CancellationToken::new();
    let (i, s) = (intake.clone(), stop.clone());
    (stop, tokio::spawn(async move { i.run(handle, s).await }))
}

/// Waits until `done` holds, or panics after `limit` naming `what`.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn intake(moto: &Moto, url: &str, o: SqsOptions) -> Arc<SqsIntake> {
    Arc::new(SqsIntake::from_config(&moto.config().await, url, o).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_messages_are_deleted_and_the_queue_ends_empty() {
    let moto = Moto::start();
    let q = queues(&moto, 2).await;
    let mut bodies: Vec<String> = (0..25)
        .map(|i| serde_json::json!({"id": i, "detail-type": "GuardDuty Finding"}).to_string())
        .collect();
    // Not JSON, and not ASCII: handed over byte for byte all the same.
    bodies.push("not json {".into());
    bodies.push("événement ✓".into());
    for b in &bodies {
        q.send(b).await;
    }
    let intake = intake(&moto, &q.url, options(30)).await;
    let calls = Calls::default();
    let c = calls.clone();
    let (stop, run) = start(&intake, move |body| {
        record(&c, &body);
        async { Verdict::Done }
    });
    until(Duration::from_secs(20), "27 deletes", || {
        intake.counts().deleted == 27
    })
    .await;
    stop.cancel();
    let counts = run.await.unwrap();

    for b in &bodies {
        assert_eq!(times(&calls, b).len(), 1, "handled once: {b}");
    }
    assert_eq!(calls.lock().unwrap().len(), bodies.len());
    assert_eq!(q.depth(&q.url).await, (0, 0), "queue empty");
    let want = SqsCounts {
        received: 27,
        deleted: 27,
        ..SqsCounts::default()
    };
    assert_eq!(counts, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_message_is_kept_and_moves_to_the_dead_letter_queue() {
    let moto = Moto::start();
    let q = queues(&moto, 2).await;
    q.send("{\"bad\": ").await;
    q.send("{\"good\": true}").await;
    let intake = intake(&moto, &q.url, options(1)).await;
    let calls = Calls::default();
    let c = calls.clone();
    let (stop, run) = start(&intake, move |body| {
        record(&c, &body);
        let v = if body.starts_with(b"{\"bad\"") {
            Verdict::Invalid("not JSON: EOF while parsing at line 1 column 8".into())
        } else {
            Verdict::Done
        };
        async move { v }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while q.depth(&q.dlq_url).await.0 == 0 {
        assert!(
            Instant::now() < deadline,
            "the bad message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let counts = run.await.unwrap();

    assert_eq!(
        times(&calls, "{\"bad\": ").len(),
        2,
        "maxReceiveCount receives"
    );
    assert_eq!(times(&calls, "{\"good\": true}").len(), 1);
    assert_eq!(q.depth(&q.url).await, (0, 0), "source queue empty");
    let dead = q
        .client
        .receive_message()
        .queue_url(&q.dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    let dead: Vec<_> = dead.iter().filter_map(|m| m.body()).collect();
    assert_eq!(dead, ["{\"bad\": "]);
    assert_eq!((counts.invalid, counts.deleted, counts.retried), (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_message_comes_back_after_retry_after_not_the_visibility_timeout() {
    let moto = Moto::start();
    let q = queues(&moto, 5).await;
    q.send("{\"later\": 1}").await;
    // 30 s visibility: only ChangeMessageVisibility can bring the message back within 10 s.
    let intake = intake(&moto, &q.url, options(30)).await;
    let calls = Calls::default();
    let c = calls.clone();
    let (stop, run) = start(&intake, move |body| {
        let v = match record(&c, &body) {
            1 => Verdict::Retry {
                reason: "journal busy".into(),
                retry_after: Duration::from_secs(2),
            },
            _ => Verdict::Done,
        };
        async move { v }
    });
    until(
        Duration::from_secs(15),
        "the retried message's delete",
        || intake.counts().deleted == 1,
    )
    .await;
    stop.cancel();
    let counts = run.await.unwrap();

    let t = times(&calls, "{\"later\": 1}");
    assert_eq!(t.len(), 2, "handled twice");
    let gap = t[1] - t[0];
    assert!(
        gap >= Duration::from_millis(1500) && gap < Duration::from_secs(10),
        "came back after {gap:?}"
    );
    assert_eq!(q.depth(&q.url).await, (0, 0));
    assert_eq!((counts.retried, counts.deleted, counts.received), (1, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_message_stays_invisible_and_does_not_hold_up_the_others() {
    let moto = Moto::start();
    let q = queues(&moto, 5).await;
    q.send("slow").await;
    q.send("fast").await;
    // 7 s of handling against a 2 s visibility timeout: without the heartbeat, moto would hand
    // "slow" out again about three times meanwhile.
    let intake = intake(&moto, &q.url, options(2)).await;
    let calls = Calls::default();
    let slow_done = Arc::new(AtomicBool::new(false));
    let (c, sd) = (calls.clone(), slow_done.clone());
    let (stop, run) = start(&intake, move |body| {
        record(&c, &body);
        let sd = sd.clone();
        async move {
            if body == b"slow" {
                tokio::time::sleep(Duration::from_secs(7)).await;
                sd.store(true, Ordering::SeqCst);
            }
            Verdict::Done
        }
    });
    until(Duration::from_secs(4), "the fast message's delete", || {
        intake.counts().deleted == 1
    })
    .await;
    assert!(
        !slow_done.load(Ordering::SeqCst),
        "deleted before the slow one finished"
    );
    assert_eq!(
        q.depth(&q.url).await,
        (0, 1),
        "only the slow one left, invisible"
    );
    until(Duration::from_secs(15), "the slow message's delete", || {
        intake.counts().deleted == 2
    })
    .await;
    stop.cancel();
    let counts = run.await.unwrap();

    assert_eq!(times(&calls, "slow").len(), 1, "never handed out twice");
    assert_eq!(times(&calls, "fast").len(), 1);
    assert_eq!(q.depth(&q.url).await, (0, 0));
    assert_eq!((counts.received, counts.deleted), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_finishes_in_flight_messages_and_receives_no_more() {
    let moto = Moto::start();
    let q = queues(&moto, 5).await;
    q.send("first").await;
    // The full 20 s long poll: stopping must not wait for it.
    let o = SqsOptions {
        wait_time: Duration::from_secs(20),
        ..options(30)
    };
    let intake = intake(&moto, &q.url, o).await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let (s, f) = (started.clone(), finished.clone());
    let (stop, run) = start(&intake, move |_body| {
        s.fetch_add(1, Ordering::SeqCst);
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            f.store(true, Ordering::SeqCst);
            Verdict::Done
        }
    });
    until(
        Duration::from_secs(10),
        "the first message's handler",
        || started.load(Ordering::SeqCst) == 1,
    )
    .await;
    stop.cancel();
    let cancelled = Instant::now();
    q.send("second").await;
    let counts = run.await.unwrap();
    let took = cancelled.elapsed();

    assert!(
        finished.load(Ordering::SeqCst),
        "run returned before its handler finished"
    );
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "nothing handled after stop"
    );
    assert_eq!((counts.deleted, counts.received), (1, 1));
    let (visible, invisible) = q.depth(&q.url).await;
    assert_eq!(visible + invisible, 1, "the second message is still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_errors_back_off_and_never_end_the_loop() {
    let moto = Moto::start();
    let missing = format!("{}/123456789012/no-such-queue", moto.endpoint);
    let intake = intake(&moto, &missing, options(30)).await;
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let (stop, run) = start(&intake, move |_body| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Verdict::Done }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!run.is_finished(), "the loop ended on receive errors");
    stop.cancel();
    let cancelled = Instant::now();
    let counts = run.await.unwrap();

    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "stop during a backoff"
    );
    // Waits of 50-100, 100-200, then 200-400 ms: 8 to 15 failures in 3 s, hundreds without.
    assert!(
        (5..=20).contains(&counts.receive_errors),
        "{} receive errors in 3 s",
        counts.receive_errors
    );
    assert_eq!(called.load(Ordering::SeqCst), 0);
    assert_eq!(counts.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_that_never_answers_times_out_after_its_wait() {
    // A loopback port that accepts connections and never answers: a half-open connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let url = format!("{endpoint}/123456789012/cordon-findings");
    let intake = Arc::new(SqsIntake::from_config(&config, &url, options(30)).unwrap());
    let began = Instant::now();
    let (stop, run) = start(&intake, |_body| async { Verdict::Done });
    until(Duration::from_secs(15), "a receive error", || {
        intake.counts().receive_errors >= 1
    })
    .await;
    let took = began.elapsed();
    stop.cancel();
    run.await.unwrap();

    // The 1 s wait plus the 5 s margin, then the attempt is given up.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(10),
        "gave up after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_leaves_its_message_and_the_loop_goes_on() {
    let moto = Moto::start();
    let q = queues(&moto, 5).await;
    q.send("boom").await;
    q.send("fine").await;
    let intake = intake(&moto, &q.url, options(30)).await;
    let (stop, run) = start(&intake, |body| async move {
        assert!(body != b"boom", "handler bug");
        Verdict::Done
    });
    until(
        Duration::from_secs(10),
        "the panic and the other delete",
        || {
            let c = intake.counts();
            c.handler_panics == 1 && c.deleted == 1
        },
    )
    .await;
    q.send("after").await;
    until(Duration::from_secs(10), "a delete after the panic", || {
        intake.counts().deleted == 2
    })
    .await;
    stop.cancel();
    let counts = run.await.unwrap();

    assert_eq!(
        q.depth(&q.url).await,
        (0, 1),
        "the panicked message is kept"
    );
    assert_eq!(
        (counts.received, counts.deleted, counts.handler_panics),
        (3, 2, 1)
    );
}
