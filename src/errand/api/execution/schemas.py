"""Response bodies of the execution dialect, in the contract's camelCase."""

from typing import Any

from errand.jobs.schemas import JobEvent, JobView, Payment, ProviderMetrics, SnapshotInfo
from errand.kit import clock

PREFIX = "/api/v1/execution-jobs"


def links(job_id: str) -> dict[str, str]:
    return {"self": f"{PREFIX}/{job_id}", "audit": f"{PREFIX}/{job_id}/audit",
            "cancel": f"{PREFIX}/{job_id}/cancel"}


def created_body(job: JobView) -> dict[str, Any]:
    return {"jobId": job.id, "status": job.status, "scenario": job.scenario,
            "organizationName": job.organization_name, "_links": links(job.id)}


def event_body(event: JobEvent) -> dict[str, Any]:
    return {"jobId": event.job_id, "stepIndex": event.step_index, "type": event.type,
            "timestamp": clock.iso(event.timestamp), "message": event.message, **event.extra}


def payment_body(payment: Payment | None) -> dict[str, Any] | None:
    """``{status: awaiting|paid|expired, expiresAt, paidAt, confirmation}``; null before a handoff."""
    if payment is None:
        return None
    return {"status": payment.status, "expiresAt": clock.iso(payment.expires_at), "paidAt": clock.iso(payment.paid_at),
            "confirmation": payment.confirmation}


def job_body(job: JobView) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "status": job.status,
        "scenario": job.scenario,
        "organizationName": job.organization_name,
        "handoffUrl": job.handoff_url,
        "sessionUrl": job.session_url,
        "summary": job.summary,
        "error": job.error,
        "decisionLog": [{"timestamp": clock.iso(e.timestamp), "type": e.type, "message": e.message, **e.extra}
                        for e in job.decision_log],
        "attemptCount": job.attempt_count,
        "usedFallback": job.used_fallback,
        "providerId": job.provider_id,
        "result": job.result,
        "payment": payment_body(job.payment),
        "approvalId": job.approval_id,
        "clientMetadata": job.client_metadata,
        "createdAt": clock.iso(job.created_at),
        "updatedAt": clock.iso(job.updated_at),
        "completedAt": clock.iso(job.completed_at),
        "_links": links(job.id),
    }


def metrics_body(m: ProviderMetrics) -> dict[str, Any]:
    return {"providerId": m.provider_id, "successRate": m.success_rate, "totalAttempts": m.total_attempts,
            "acceptedCount": m.accepted_count, "manualOverrideCount": m.manual_override_count,
            "failedCount": m.failed_count, "lastEventAt": clock.iso(m.last_event_at),
            "timeRangeDays": m.time_range_days}


def provider_body(p: dict[str, Any]) -> dict[str, Any]:
    return {"id": p["id"], "displayName": p["display_name"], "scenarios": p["scenarios"], "kind": p["kind"],
            "sandbox": p["sandbox"], "enabled": p["enabled"]}


def snapshot_body(s: SnapshotInfo) -> dict[str, Any]:
    return {"snapshotId": s.id, "step": s.step, "url": s.url, "timestamp": clock.iso(s.created_at)}
