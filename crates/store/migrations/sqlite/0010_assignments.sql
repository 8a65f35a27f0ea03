-- Dedicated managers (客户经理制): who manages which customer under a policy, since when and
-- why. A customer's manager here overrides the owner its latest run recorded (`[service]
-- owner`), for agent permissions and for the pipeline.
CREATE TABLE manager_assignments (
    policy_name TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    manager TEXT NOT NULL,
    since TEXT NOT NULL,
    reason TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    PRIMARY KEY (policy_name, customer_id)
);
CREATE INDEX manager_assignments_by_manager ON manager_assignments (policy_name, manager);

-- Every change of a prospect's rep: an assignment, or an overdue follow-up returned to the
-- pool and handed on.
CREATE TABLE rep_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    from_rep TEXT NOT NULL,
    to_rep TEXT NOT NULL,
    on_date TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX rep_changes_by_customer ON rep_changes (customer_id, id);

-- What serves owners from memory asks often for the last `assignment.apply`.
CREATE INDEX audit_log_by_action ON audit_log (action, subject, id);
