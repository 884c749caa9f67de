//! Reconciliation: diff the desired state against the observed one, plan, apply.
