//! The names Salve writes into conditions and Events, as constants used everywhere: a typo
//! would otherwise create a new condition type or a reason no alert matches.

/// Condition types Salve writes, one constant each, so a typo cannot create a new type.
pub mod condition_type {
    /// The object's overall state; `True` once it reached a terminal phase.
    pub const READY: &str = "Ready";
    /// A permanent error stopped progress until the object changes (kstatus' `Stalled`).
    pub const STALLED: &str = "Stalled";
    pub const POLICY_ALLOWED: &str = "PolicyAllowed";
    pub const APPROVED: &str = "Approved";
    pub const SNAPSHOT_SAVED: &str = "SnapshotSaved";
    pub const APPLIED: &str = "Applied";
    pub const VERIFIED: &str = "Verified";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const PULL_REQUEST: &str = "PullRequest";
    pub const PULL_REQUEST_OPENED: &str = "PullRequestOpened";
    pub const MERGED: &str = "Merged";
    pub const ROLLED_OUT: &str = "RolledOut";
    pub const MODEL_DIAGNOSIS: &str = "ModelDiagnosis";
    pub const POST_MORTEM_ARCHIVED: &str = "PostMortemArchived";
    /// Incident: whether the last notification was delivered (`False` while one keeps failing).
    pub const NOTIFICATION_DELIVERED: &str = "NotificationDelivered";
}

/// Reasons (of conditions and Events): one CamelCase word a machine can match on.
pub mod reason {
    // Incident steps
    pub const INVESTIGATING: &str = "Investigating";
    pub const DIAGNOSED: &str = "Diagnosed";
    pub const REDIAGNOSE: &str = "Rediagnose";
    pub const REMEDIATION_CREATED: &str = "RemediationCreated";
    pub const VERIFYING: &str = "Verifying";
    pub const RESOLVED: &str = "Resolved";
    pub const REJECTED: &str = "Rejected";
    pub const REMEDIATION_FAILED: &str = "RemediationFailed";
    pub const ATTEMPTS_EXHAUSTED: &str = "AttemptsExhausted";
    pub const EVIDENCE_UNAVAILABLE: &str = "EvidenceUnavailable";
    pub const NO_SAFE_ACTION: &str = "NoSafeAction";
    pub const POLICY_REFUSED: &str = "PolicyRefused";
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    pub const DRY_RUN: &str = "DryRun";
    pub const MODEL_FALLBACK: &str = "ModelFallback";
    pub const FELL_BACK_TO_RULES: &str = "FellBackToRules";
    // Remediation steps
    pub const ALLOWED: &str = "Allowed";
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    pub const APPROVED: &str = "Approved";
    pub const AUTO_APPROVED: &str = "AutoApproved";
    pub const SNAPSHOT_SAVED: &str = "SnapshotSaved";
    pub const SNAPSHOT_FAILED: &str = "SnapshotFailed";
    pub const APPLYING: &str = "Applying";
    pub const APPLIED: &str = "Applied";
    pub const APPLY_FAILED: &str = "ApplyFailed";
    pub const SIGNAL_CLEARED: &str = "SignalCleared";
    pub const SIGNAL_NOT_CLEARED: &str = "SignalNotCleared";
    pub const VERIFIED: &str = "Verified";
    pub const VERIFICATION_FAILED: &str = "VerificationFailed";
    pub const UNDONE: &str = "Undone";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const UNDO_FAILED: &str = "UndoFailed";
    /// The target no longer holds what was applied (someone changed it since): neither verified
    /// nor undone, so a person's newer change is never overwritten.
    pub const CHANGED_SINCE_APPLIED: &str = "ChangedSinceApplied";
    /// Deleted (or its Incident was) while the change was applied but not verified: undone first.
    pub const DELETED_BEFORE_VERIFIED: &str = "DeletedBeforeVerified";
    /// A person abandoned the change (`kubectl salve abandon`): left in place, not undone.
    pub const ABANDONED: &str = "Abandoned";
    /// The Incident's Remediation was deleted: a person took over.
    pub const REMEDIATION_DELETED: &str = "RemediationDeleted";
    pub const NOTHING_TO_UNDO: &str = "NothingToUndo";
    // Pull requests
    pub const GITHUB_NOT_CONFIGURED: &str = "GitHubNotConfigured";
    pub const GITHUB_ERROR: &str = "GitHubError";
    pub const CHANGE_DOES_NOT_APPLY: &str = "ChangeDoesNotApply";
    pub const PULL_REQUEST_OPENED: &str = "PullRequestOpened";
    pub const OPENED: &str = "Opened";
    pub const MERGED: &str = "Merged";
    pub const CLOSED_WITHOUT_MERGE: &str = "ClosedWithoutMerge";
    pub const ROLLED_OUT: &str = "RolledOut";
    pub const ROLLOUT_TIMED_OUT: &str = "RolloutTimedOut";
    pub const REVERT_PROPOSED: &str = "RevertProposed";
    // Post-mortems
    pub const ARCHIVED: &str = "Archived";
    pub const POST_MORTEM_ARCHIVED: &str = "PostMortemArchived";
    pub const POST_MORTEM_ARCHIVE_FAILED: &str = "PostMortemArchiveFailed";
    pub const OBJECT_LOCK_NOT_ENABLED: &str = "ObjectLockNotEnabled";
    pub const NO_SUCH_BUCKET: &str = "NoSuchBucket";
    pub const UPLOAD_FAILED: &str = "UploadFailed";
    // Notifications
    pub const DELIVERED: &str = "Delivered";
    pub const DELIVERY_FAILED: &str = "DeliveryFailed";
    // Errors
    pub const INVALID_OBJECT: &str = "InvalidObject";
    pub const ILLEGAL_TRANSITION: &str = "IllegalTransition";
    pub const REJECTED_BY_API_SERVER: &str = "RejectedByAPIServer";
    /// The API server answered 403: the operator's RBAC does not cover the request. Repeating it
    /// cannot help until someone grants it (or the object changes).
    pub const FORBIDDEN: &str = "Forbidden";
    /// The API server answered 404 for something the reconcile needs (a namespace, a target).
    pub const NOT_FOUND: &str = "NotFound";
}
