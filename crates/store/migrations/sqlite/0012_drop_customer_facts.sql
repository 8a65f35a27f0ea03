-- Its rows are in fact_chunks now (moved by `stratum migrate` just before this migration).
DROP INDEX customer_facts_by_owner;
DROP TABLE customer_facts;
