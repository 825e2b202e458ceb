//! Store tests of the job queue, on SQLite always and on PostgreSQL when
//! `VIPANEL_TEST_POSTGRES_URL` is set.

mod db_support;

use std::collections::HashSet;
use std::time::Duration;
use vipanel::store::{Db, JobEnd, JobFilter, JobRow, Lease, NewJob};

const LEASE: Duration = Duration::from_secs(60);

fn new_job<'a>(kind: &'a str, key: Option<&'a str>) -> NewJob<'a> {
    NewJob {
        kind,
        tenant_id: None,
        created_by: "admin",
        payload: "{\"n\":1}",
        max_attempts: 3,
        timeout_secs: 60,
        idempotency_key: key,
        run_at: None,
        node: None,
    }
}

async fn enqueue(db: &Db, job: &NewJob<'_>) -> (JobRow, bool) {
    let mut tx = db.begin().await.unwrap();
    let out = tx.enqueue_job(job).await.unwrap();
    tx.commit().await.unwrap();
    out
}

#[tokio::test]
async fn enqueue_is_idempotent_by_key_and_lists_filter() {
    for t in db_support::all().await {
        let db = &t.db;
        let mut tx = db.begin().await.unwrap();
        let tenant = tx.insert_tenant("acme").await.unwrap();
        tx.commit().await.unwrap();
        let (a, created) = enqueue(db, &new_job("demo", Some("k1"))).await;
        assert!(created, "{}", t.name);
        assert_eq!(a.state, "queued");
        assert_eq!(a.payload, "{\"n\":1}");
        let (again, created) = enqueue(db, &new_job("demo", Some("k1"))).await;
        assert!(!created, "{}", t.name);
        assert_eq!(again.id, a.id);
        let (b, _) = enqueue(db, &new_job("other", None)).await;
        let (c, _) = enqueue(db, &new_job("other", None)).await;
        assert_ne!(b.id, c.id);
        let mut owned = new_job("demo", None);
        owned.tenant_id = Some(tenant);
        let (d, _) = enqueue(db, &owned).await;
        assert_eq!(d.tenant.as_deref(), Some("acme"));

        let all = db
            .jobs(&JobFilter {
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 4, "{}", t.name);
        assert_eq!(all[0].id, d.id, "newest first");
        let demo = db
            .jobs(&JobFilter {
                kind: Some("demo".into()),
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(demo.len(), 2);
        let mine = db
            .jobs(&JobFilter {
                tenant_id: Some(tenant),
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.iter().map(|j| j.id).collect::<Vec<_>>(), [d.id]);
        let one = db
            .jobs(&JobFilter {
                state: Some("queued".into()),
                limit: 1,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(db.job(a.id).await.unwrap().unwrap().kind, "demo");
        assert!(db.job(9999).await.unwrap().is_none());
        t.finish().await;
    }
}

#[tokio::test]
async fn claim_lease_progress_and_success() {
    for t in db_support::all().await {
        let db = &t.db;
        let mut later = new_job("demo", None);
        later.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        enqueue(db, &later).await;
        assert!(
            db.claim_job("w1", "node", LEASE).await.unwrap().is_none(),
            "not due yet"
        );
        let (job, _) = enqueue(db, &new_job("demo", None)).await;
        let claimed = db.claim_job("w1", "node", LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.id, job.id, "{}", t.name);
        assert_eq!(claimed.state, "running");
        assert_eq!(claimed.attempts, 1);
        assert_eq!(claimed.worker.as_deref(), Some("w1"));
        assert!(claimed.lease_until.unwrap() > chrono::Utc::now());
        assert!(db.claim_job("w2", "node", LEASE).await.unwrap().is_none());

        let held = db
            .renew_job_lease(job.id, "w1", LEASE, Some((40, "half way")))
            .await
            .unwrap();
        assert_eq!(held, Lease::Held { cancel: false });
        let lost = db.renew_job_lease(job.id, "w2", LEASE, None).await.unwrap();
        assert_eq!(lost, Lease::Lost, "another worker's lease");
        let now = db.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (now.progress, now.message.as_deref()),
            (40, Some("half way"))
        );

        let end = JobEnd::Succeeded {
            result: "{\"ok\":true}",
        };
        assert!(db.finish_job(job.id, "w2", &end).await.unwrap().is_none());
        let done = db.finish_job(job.id, "w1", &end).await.unwrap().unwrap();
        assert_eq!(done.state, "succeeded");
        assert_eq!(done.progress, 100);
        assert_eq!(done.result.as_deref(), Some("{\"ok\":true}"));
        assert!(done.finished_at.is_some() && done.worker.is_none());
        t.finish().await;
    }
}

#[tokio::test]
async fn failures_back_off_then_fail_and_retry_resets() {
    for t in db_support::all().await {
        let db = &t.db;
        let mut job = new_job("demo", None);
        job.max_attempts = 2;
        let (job, _) = enqueue(db, &job).await;
        let fail = JobEnd::Failed {
            error: "boom",
            backoff_base: Duration::from_secs(30),
        };
        db.claim_job("w", "node", LEASE).await.unwrap().unwrap();
        let before = chrono::Utc::now();
        let again = db.finish_job(job.id, "w", &fail).await.unwrap().unwrap();
        assert_eq!(again.state, "queued", "{}", t.name);
        assert_eq!(again.error.as_deref(), Some("boom"));
        assert!(again.run_at >= before + chrono::Duration::seconds(29));
        assert!(again.finished_at.is_none());
        assert!(
            db.claim_job("w", "node", LEASE).await.unwrap().is_none(),
            "backing off"
        );

        // Make it due now (as time passing would), then fail the last attempt.
        let sql = "UPDATE jobs SET run_at = created_at";
        on_any(db, sql).await;
        let second = db.claim_job("w", "node", LEASE).await.unwrap().unwrap();
        assert_eq!(second.attempts, 2);
        let failed = db.finish_job(job.id, "w", &fail).await.unwrap().unwrap();
        assert_eq!(failed.state, "failed");
        assert!(failed.finished_at.is_some());

        let mut tx = db.begin().await.unwrap();
        let retried = tx.retry_job(job.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(retried.state, "queued");
        assert_eq!(retried.attempts, 0);
        assert!(retried.error.is_none() && retried.finished_at.is_none());
        let mut tx = db.begin().await.unwrap();
        let unchanged = tx.retry_job(job.id).await.unwrap().unwrap();
        assert_eq!(unchanged.state, "queued", "a queued job is not retried");
        drop(tx);
        t.finish().await;
    }
}

#[tokio::test]
async fn cancel_queued_at_once_running_at_checkpoint() {
    for t in db_support::all().await {
        let db = &t.db;
        let (queued, _) = enqueue(db, &new_job("demo", None)).await;
        let mut tx = db.begin().await.unwrap();
        let cancelled = tx.cancel_job(queued.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(cancelled.state, "cancelled", "{}", t.name);
        assert!(cancelled.finished_at.is_some());

        let (running, _) = enqueue(db, &new_job("demo", None)).await;
        db.claim_job("w", "node", LEASE).await.unwrap().unwrap();
        let mut tx = db.begin().await.unwrap();
        let flagged = tx.cancel_job(running.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(flagged.state, "running");
        assert!(flagged.cancel_requested);
        let lease = db.renew_job_lease(running.id, "w", LEASE, None).await;
        assert_eq!(lease.unwrap(), Lease::Held { cancel: true });
        // A failure after a cancel request is a cancellation, not a retry.
        let fail = JobEnd::Failed {
            error: "stopped",
            backoff_base: Duration::from_secs(1),
        };
        let end = db
            .finish_job(running.id, "w", &fail)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end.state, "cancelled");

        let mut tx = db.begin().await.unwrap();
        let retried = tx.retry_job(running.id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(retried.state, "queued");
        assert!(!retried.cancel_requested);
        let mut tx = db.begin().await.unwrap();
        assert!(tx.cancel_job(12345).await.unwrap().is_none());
        drop(tx);
        t.finish().await;
    }
}

/// A job pinned to a node is claimed only by that node's workers; a caller may take its own
/// job by id; a job released at shutdown is queued again at once, its attempt counted.
#[tokio::test]
async fn pinned_jobs_claims_by_id_and_releases() {
    for t in db_support::all().await {
        let db = &t.db;
        let mut pinned = new_job("demo", None);
        pinned.node = Some("web1");
        let (job, _) = enqueue(db, &pinned).await;
        assert_eq!(job.node.as_deref(), Some("web1"), "{}", t.name);
        assert!(
            db.claim_job("w", "web2", LEASE).await.unwrap().is_none(),
            "another node passes over it ({})",
            t.name
        );
        let claimed = db.claim_job("w", "web1", LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.id, job.id);
        assert_eq!(claimed.attempts, 1);

        assert!(!db.release_job(job.id, "someone-else").await.unwrap());
        assert!(db.release_job(job.id, "w").await.unwrap(), "{}", t.name);
        let back = db.job(job.id).await.unwrap().unwrap();
        assert_eq!(back.state, "queued", "{}", t.name);
        assert_eq!(back.attempts, 1, "the interrupted attempt counts");
        assert!(back.run_at <= chrono::Utc::now(), "due at once, no backoff");
        assert!(back.worker.is_none() && back.lease_until.is_none());

        let again = db.claim_job_by_id(job.id, "cmd", LEASE).await.unwrap();
        assert_eq!(again.map(|j| j.worker), Some(Some("cmd".to_owned())));
        assert!(
            db.claim_job_by_id(job.id, "w", LEASE)
                .await
                .unwrap()
                .is_none(),
            "a running job is not taken twice ({})",
            t.name
        );
        t.finish().await;
    }
}

#[tokio::test]
async fn expired_leases_are_requeued_or_failed() {
    for t in db_support::all().await {
        let db = &t.db;
        let (a, _) = enqueue(db, &new_job("demo", None)).await;
        let mut last = new_job("demo", None);
        last.max_attempts = 1;
        let (b, _) = enqueue(db, &last).await;
        db.claim_job("dead", "node", Duration::from_secs(1))
            .await
            .unwrap();
        db.claim_job("dead", "node", Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            db.requeue_expired_jobs(chrono::Utc::now()).await.unwrap(),
            0
        );
        let future = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(
            db.requeue_expired_jobs(future).await.unwrap(),
            2,
            "{}",
            t.name
        );
        let a = db.job(a.id).await.unwrap().unwrap();
        assert_eq!(a.state, "queued");
        assert!(a.worker.is_none() && a.lease_until.is_none());
        assert!(a.error.unwrap().contains("lease expired"));
        assert_eq!(db.job(b.id).await.unwrap().unwrap().state, "failed");
        // The dead worker's late report changes nothing.
        let end = JobEnd::Succeeded { result: "{}" };
        assert!(db.finish_job(a.id, "dead", &end).await.unwrap().is_none());
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_each_get_distinct_jobs() {
    for t in db_support::all().await {
        let db = &t.db;
        const JOBS: usize = 30;
        for _ in 0..JOBS {
            enqueue(db, &new_job("demo", None)).await;
        }
        let mut claimers = Vec::new();
        for w in 0..6 {
            let db = db.clone();
            claimers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(job) = db.claim_job(&format!("w{w}"), "node", LEASE).await.unwrap() {
                    got.push(job.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for c in claimers {
            all.extend(c.await.unwrap());
        }
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!(all.len(), JOBS, "{}: every job claimed once", t.name);
        assert_eq!(distinct.len(), JOBS, "{}", t.name);
        for id in all {
            assert_eq!(db.job(id).await.unwrap().unwrap().attempts, 1);
        }
        t.finish().await;
    }
}

async fn on_any(db: &Db, sql: &'static str) {
    match db {
        Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
        Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
    }
    .unwrap();
}
