-- The ladders each run placed customers on. A customer's history is found through the
-- primary key (run_id, ladder, customer_id) once per run and ladder, so the assignments
-- table needs no second index: inserting a run's rows then appends to one B-tree instead
-- of scattering writes over a customer index (see BENCHMARKS.md: the second recorded run of
-- 1M customers went from 29.6 s to 19 s).
CREATE TABLE run_ladders (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    ladder TEXT NOT NULL,
    PRIMARY KEY (run_id, ladder)
);
INSERT INTO run_ladders (run_id, ladder) SELECT DISTINCT run_id, ladder FROM assignments;
DROP INDEX assignments_by_customer;
