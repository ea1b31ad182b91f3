//! The Job controller: pods (`JOB-<5 chars>`, labelled `job-name`/`controller-uid` and their
//! `batch.kubernetes.io/` forms, owned by the Job) up to `parallelism` until `completions` have succeeded;
//! then `completionTime` and the `SuccessCriteriaMet` and `Complete` conditions (reason
//! `CompletionsReached`), as `pkg/controller/job` writes them since Kubernetes 1.31.
//!
//! The simulation's kubelet runs every Job pod to `Succeeded` after its delay: whatever the command, a Job
//! completes. Pods are not given the `batch.kubernetes.io/job-tracking` finalizer.

use serde_json::{Value, json};

use super::{
    Controller, Requeue, SeededGenerations, create, deleting, int_at, owned, pod_from_template, pod_ready,
    read, record_event, warn, workload_or_controller, write_status,
};
use crate::store::{Event, ObjKey, State};
use crate::util::{get_str, now_rfc3339};

/// The Job controller (see the module docs).
#[derive(Debug, Default)]
pub struct JobController {
    seeded: SeededGenerations,
}

fn phase(pod: &Value) -> &str {
    get_str(pod, &["status", "phase"]).unwrap_or("Pending")
}

fn has_condition(status: Option<&Value>, ty: &str) -> bool {
    status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

fn job_condition(ty: &str, now: &str) -> Value {
    json!({"type": ty, "status": "True", "reason": "CompletionsReached",
           "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now})
}

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        workload_or_controller(st, event, ("batch", "jobs"), ("", "pods"), "Job").unwrap_or_default()
    }

    fn reconcile(&mut self, st: &mut State, job_key: &ObjKey, _queue: &Requeue) {
        let Some(job) = read(st, job_key) else { return };
        if deleting(&job) || self.seeded.frozen(st, job_key, &job) {
            return;
        }
        let ns = job_key.namespace.as_str();
        let uid = get_str(&job, &["metadata", "uid"]).unwrap_or("").to_string();
        let previous = job.get("status").cloned();
        let finished =
            has_condition(previous.as_ref(), "Complete") || has_condition(previous.as_ref(), "Failed");
        let completions = int_at(&job, "/spec/completions", 1);
        let parallelism = int_at(&job, "/spec/parallelism", 1);
        let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
        let now = now_rfc3339();

        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid);
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let active = pods
            .iter()
            .filter(|p| !deleting(p) && !matches!(phase(p), "Succeeded" | "Failed"))
            .count() as i64;
        let mut created = 0;
        if !finished && !suspended && succeeded < completions {
            let want = parallelism.min(completions - succeeded) - active;
            for _ in 0..want.max(0) {
                match create(st, pod_from_template(&job, ns)) {
                    Ok(pod) => {
                        created += 1;
                        let message = format!(
                            "Created pod: {}",
                            get_str(&pod, &["metadata", "name"]).unwrap_or("")
                        );
                        record_event(st, &job, "SuccessfulCreate", &message, "job-controller");
                    }
                    Err(e) => tracing::warn!("job-controller: creating a pod: {}", e.message),
                }
            }
        }
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let mut status = previous
            .clone()
            .and_then(|s| s.as_object().cloned())
            .unwrap_or_default();
        if !status.contains_key("startTime") && (created > 0 || !pods.is_empty()) {
            status.insert("startTime".into(), json!(now));
        }
        let mut set = |k: &str, v: i64, omit_zero: bool| {
            if v == 0 && omit_zero {
                status.remove(k);
            } else {
                status.insert(k.into(), json!(v));
            }
        };
        set("active", active + created, true);
        set("succeeded", succeeded, true);
        set("failed", failed, true);
        set("ready", ready, false);
        set("terminating", 0, false);
        status.insert("uncountedTerminatedPods".into(), json!({}));
        if !finished && succeeded >= completions {
            status.insert("completionTime".into(), json!(now));
            record_event(st, &job, "Completed", "Job completed", "job-controller");
            status.insert(
                "conditions".into(),
                json!([
                    job_condition("SuccessCriteriaMet", &now),
                    job_condition("Complete", &now)
                ]),
            );
        }
        warn(
            self.name(),
            "writing Job status",
            write_status(st, job_key, Value::Object(status)),
        );
    }
}
